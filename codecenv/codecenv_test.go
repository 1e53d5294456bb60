package codecenv_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/envelopecodec/envelope/codecenv"
	"github.com/envelopecodec/envelope/keyring"
)

func keyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(p, time.Now()); err != nil {
		t.Fatal(err)
	}
	return p
}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func load(t *testing.T, env map[string]string) (*codecenv.Env, error) {
	t.Helper()
	o := codecenv.Options{LookupEnv: lookup(env)}
	o.Temporal.DisableFile = true // not the user's Temporal config file
	e, err := codecenv.Load(context.Background(), o)
	if err == nil {
		t.Cleanup(func() { e.Close() })
	}
	return e, err
}

func TestLoad(t *testing.T) {
	t.Parallel()
	keys := keyFile(t)
	for _, tt := range []struct {
		name      string
		env       map[string]string
		namespace string
		wantErr   string
	}{
		{"the namespace is TEMPORAL_NAMESPACE's", map[string]string{"CODEC_SERVER_KEYS_FILE": keys, "TEMPORAL_NAMESPACE": "payments"}, "payments", ""},
		{"no namespace means default", map[string]string{"CODEC_SERVER_KEYS_FILE": keys}, "default", ""},
		{"no keyring is an error naming the variables", map[string]string{"TEMPORAL_NAMESPACE": "payments"}, "", "set CODEC_SERVER_KEYS_FILE or VAULT_ADDR"},
		{"a missing key file is an error", map[string]string{"CODEC_SERVER_KEYS_FILE": filepath.Join(t.TempDir(), "nope.json")}, "", "nope.json"},
		{"Vault without a key is an error", map[string]string{"VAULT_ADDR": "http://127.0.0.1:1"}, "", "--vault-key is required"},
		{"a bad reload interval is an error naming the variable", map[string]string{"CODEC_SERVER_KEYS_FILE": keys, "CODEC_SERVER_KEYS_RELOAD": "often"}, "", "CODEC_SERVER_KEYS_RELOAD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := load(t, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Namespace != tt.namespace || e.ClientOptions.Namespace != tt.namespace || e.Codec.Namespace() != tt.namespace {
				t.Errorf("namespaces: Env %q, client %q, codec %q; want %q", e.Namespace, e.ClientOptions.Namespace, e.Codec.Namespace(), tt.namespace)
			}
			if e.ClientOptions.DataConverter != e.DataConverter || e.ClientOptions.FailureConverter != e.FailureConverter {
				t.Error("ClientOptions do not carry the converters")
			}
		})
	}
}

// TestFailuresAreSealed: an error's message and stack trace leave the
// process only sealed, and come back whole.
func TestFailuresAreSealed(t *testing.T) {
	t.Parallel()
	e, err := load(t, map[string]string{"CODEC_SERVER_KEYS_FILE": keyFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "invalid card 4111 1111 1111 1111"
	f := e.FailureConverter.ErrorToFailure(temporal.NewApplicationError(secret, "CardDeclined"))
	if strings.Contains(f.String(), "4111") {
		t.Fatalf("the failure holds the secret in plaintext: %v", f)
	}
	if got := string(f.GetEncodedAttributes().GetMetadata()["encoding"]); got != "binary/encrypted" {
		t.Fatalf("encoded attributes have encoding %q, want binary/encrypted", got)
	}
	back := e.FailureConverter.FailureToError(f)
	var ae *temporal.ApplicationError
	if !errors.As(back, &ae) || !strings.Contains(ae.Error(), secret) {
		t.Errorf("decoded failure %v, want the message %q", back, secret)
	}
	// And payloads are sealed by the data converter.
	p, err := e.DataConverter.ToPayload(secret)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata["encoding"]) != "binary/encrypted" || strings.Contains(string(p.Data), "4111") {
		t.Errorf("payload not sealed: %v", p)
	}
}
