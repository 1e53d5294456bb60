package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring/awskms"
)

// TestAWSKMSKeyring runs the examples with the AWS KMS keyring against a
// KMS API emulator (local-kms): the worker, the starter and the codec
// server take --aws-kms-key alias/temporal and find KMS through the AWS
// SDK's own AWS_ENDPOINT_URL_KMS, region and credentials. Temporal stores
// only ciphertext whose key IDs name the KMS key's ARN, and the real
// temporal CLI decodes it through the codec server. A payload sealed in
// namespace default is refused in namespace payments twice over: by the
// codec (the CLI through /payments) and by KMS's encryption context (the
// same payload rewritten as envelope/v1, which is not bound to a namespace
// by the codec, and KMS's own Decrypt).
func TestAWSKMSKeyring(t *testing.T) {
	t.Parallel()
	k := testenv.StartKMS(t)
	arn := k.CreateKey(t, "alias/temporal")
	keyArgs := []string{"--aws-kms-key", "alias/temporal"}
	keyEnv := k.Env()

	cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: keyArgs, Env: keyEnv})
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{})
	e := env{temporal: tc, keyArgs: keyArgs, keyEnv: keyEnv}
	s := newSecrets(t)
	startWorker(t, e, "tq-kms")
	r := runStarter(t, e, "tq-kms", s)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	raw := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json")
	if raw.Err != nil {
		t.Fatal(raw)
	}
	assertNoPlaintext(t, "workflow show", raw.Stdout, s, 5)
	var doc any
	if err := json.Unmarshal([]byte(raw.Stdout), &doc); err != nil {
		t.Fatal(err)
	}
	ps := payloads(doc)
	for i, p := range ps {
		if id := string(b64(p["metadata"].(map[string]any)["encryption-key-id"])); id != "aws-kms/v1/"+arn {
			t.Errorf("payload %d has key id %q, want aws-kms/v1/%s", i, id, arn)
		}
	}

	t.Run("the CLI decodes through the codec server on KMS", func(t *testing.T) {
		dec := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "--detailed", "--codec-endpoint", cs.URL)
		if dec.Err != nil {
			t.Fatalf("%s\ncodec server:\n%s", dec, cs.Output())
		}
		assertLines(t, "workflow show --detailed through the codec server", dec.Stdout, s.detailedLines()...)
	})

	t.Run("codec-server decode opens the saved history with the same flag", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, testenv.Binary(t, "codec-server"), append([]string{"decode"}, keyArgs...)...)
		cmd.Env = append(cleanEnv(os.Environ()), keyEnv...)
		cmd.Dir = t.TempDir()
		cmd.Stdin = strings.NewReader(raw.Stdout)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("codec-server decode --aws-kms-key alias/temporal: %v\n%s", err, stderrOf(err))
		}
		assertShown(t, "codec-server decode", string(out),
			`"Name": "`+s.Name+`"`, `"Card": "`+s.Card+`"`, `"Note": "`+s.Note+`"`, `"Welcome": "Welcome aboard, `+s.Name+`!"`)
	})

	t.Run("the codec server serves /encode, /decode and /readyz on KMS", func(t *testing.T) {
		body := []byte(`{"payloads":[{"metadata":{"encoding":"` + base64.StdEncoding.EncodeToString([]byte("json/plain")) + `"},"data":"` + base64.StdEncoding.EncodeToString([]byte(`"`+s.Note+`"`)) + `"}]}`)
		status, sealed := post(t, cs.URL+"/encode", body)
		if status != http.StatusOK || strings.Contains(sealed, base64.StdEncoding.EncodeToString([]byte(`"`+s.Note+`"`))) || !strings.Contains(sealed, base64.StdEncoding.EncodeToString([]byte("aws-kms/v1/"+arn))) {
			t.Fatalf("POST /encode: %d %s, want 200 with a payload sealed under aws-kms/v1/%s", status, sealed, arn)
		}
		status, opened := post(t, cs.URL+"/decode", []byte(sealed))
		if status != http.StatusOK || !strings.Contains(opened, base64.StdEncoding.EncodeToString([]byte(`"`+s.Note+`"`))) {
			t.Fatalf("POST /decode of /encode's answer: %d %s, want 200 with the note", status, opened)
		}
		if status, answer := get(t, cs.URL+"/readyz"); status != http.StatusOK {
			t.Fatalf("GET /readyz: %d %s, want 200", status, answer)
		}
	})

	t.Run("the codec refuses default's payloads in namespace payments", func(t *testing.T) {
		res := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "--detailed", "--codec-endpoint", cs.URL+"/payments")
		if res.Err == nil {
			t.Errorf("the CLI succeeded, want a failure:\n%s", res)
		}
		for _, secret := range s.all() {
			if strings.Contains(res.Stdout+res.Stderr, secret) {
				t.Errorf("plaintext %q in the refused CLI's output", secret)
			}
		}
		t.Logf("CLI said: %s", strings.TrimSpace(res.Stderr))
		if !waitLogLine(cs.Output, "reason=namespace_mismatch", "namespace=payments") {
			t.Errorf("no request failed with namespace_mismatch in payments in the codec server's log:\n%s", cs.Output())
		}
	})

	t.Run("KMS refuses default's data key under payments' encryption context", func(t *testing.T) {
		md := ps[0]["metadata"].(map[string]any)
		wrapped := b64(md["encryption-wrapped-key"])
		// KMS itself, asked directly.
		if _, err := k.Client().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wrapped, EncryptionContext: awskms.EncryptionContext("default")}); err != nil {
			t.Fatalf("KMS Decrypt of the history's data key with default's context: %v", err)
		}
		_, err := k.Client().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wrapped, EncryptionContext: awskms.EncryptionContext("payments")})
		var ice *types.InvalidCiphertextException
		if !errors.As(err, &ice) {
			t.Fatalf("KMS Decrypt of the history's data key with payments' context: %v, want InvalidCiphertextException", err)
		}

		// Through the codec server: the payload rewritten as envelope/v1
		// (no namespace in the format) passes the codec's namespace check
		// and reaches KMS, which refuses it. Had KMS unwrapped the data
		// key, the answer would be "decrypt" (the v1 additional data
		// differs), not "unwrap".
		v1 := map[string]any{"data": ps[0]["data"], "metadata": map[string]any{}}
		for name, v := range md {
			v1["metadata"].(map[string]any)[name] = v
		}
		delete(v1["metadata"].(map[string]any), "encryption-namespace")
		v1["metadata"].(map[string]any)["encryption-format"] = base64.StdEncoding.EncodeToString([]byte("envelope/v1"))
		body, _ := json.Marshal(map[string]any{"payloads": []any{v1}})
		status, answer := post(t, cs.URL+"/payments/decode", body)
		t.Logf("POST /payments/decode: %d %s", status, answer)
		if status != http.StatusUnprocessableEntity || !strings.Contains(answer, "data key cannot be unwrapped") {
			t.Errorf("decode of default's payload as v1 in payments: %d %s, want 422 saying the data key cannot be unwrapped", status, answer)
		}
		if !waitLogLine(cs.Output, "reason=unwrap", "InvalidCiphertextException") {
			t.Errorf("no request failed with KMS's InvalidCiphertextException in the codec server's log:\n%s", cs.Output())
		}
		// The same rewritten payload in its own namespace decodes no
		// further than the codec's own check of the v1 additional data:
		// KMS unwraps the data key there.
		status, answer = post(t, cs.URL+"/default/decode", body)
		if status != http.StatusUnprocessableEntity || !strings.Contains(answer, "failed to decrypt") {
			t.Errorf("decode of the rewritten payload in default: %d %s, want 422 saying the payload failed to decrypt", status, answer)
		}
	})

	t.Run("/readyz answers 503 once KMS is gone", func(t *testing.T) {
		k.Stop()
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, answer := get(t, cs.URL+"/readyz")
			if status == http.StatusServiceUnavailable {
				t.Logf("GET /readyz without KMS: %d %s", status, answer)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /readyz without KMS: %d %s, want 503\n%s", status, answer, cs.Output())
			}
			time.Sleep(200 * time.Millisecond) // polling with a deadline (the server caches /readyz)
		}
	})
}

// get fetches url and returns the status and the answer.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// post sends body to url as JSON and returns the status and the answer.
func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// waitLogLine polls output until one line holds every part, for a while.
func waitLogLine(output func() string, parts ...string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(output(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}
