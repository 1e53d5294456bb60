package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestDevKeyFileOnlyForTheLoopbackDefault: without --keys-file or Vault,
// only the loopback default without authentication may use the development
// key file; anything else refuses to start and names what it expected.
func TestDevKeyFileOnlyForTheLoopbackDefault(t *testing.T) {
	t.Parallel()
	noEnv := func(string) (string, bool) { return "", false }
	tests := []struct {
		name    string
		args    []string
		lookup  func(string) (string, bool)
		environ []string
		want    string // "" means it starts with the development key file
	}{
		{"no flags", nil, noEnv, nil, ""},
		{"loopback flags of the demo", []string{"--listen", "127.0.0.1:18081", "--cors-origin", "http://localhost:18233"}, noEnv, nil, ""},
		{"a non-loopback listen without auth", []string{"--listen", "0.0.0.0:8081", "--insecure-no-auth"}, noEnv, nil, "--insecure-no-auth is set"},
		{"JWT auth on loopback", []string{"--jwks-file", "jwks.json"}, noEnv, nil, "authentication is configured"},
		{"JWT auth on every interface", []string{"--listen", "0.0.0.0:8081", "--jwks-file", "jwks.json"}, noEnv, nil, "authentication is configured"},
		{"a misspelled key file variable", nil, noEnv, []string{"CODEC_SERVER_KEY_FILE=/secrets/keys.json", "HOME=/root"}, "CODEC_SERVER_KEY_FILE"},
		{"a listen address from the environment, as in the image", nil, func(n string) (string, bool) { return "0.0.0.0:8081", n == "CODEC_SERVER_LISTEN" }, nil, "--insecure-no-auth"},
		{"a Kubernetes pod", nil, func(n string) (string, bool) { return "10.0.0.1", n == "KUBERNETES_SERVICE_HOST" }, nil, "Kubernetes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := NewMain()
			m.Stderr = io.Discard
			m.LookupEnv = tt.lookup
			environ := tt.environ
			m.Environ = func() []string { return environ }
			err := m.ParseFlags(context.Background(), tt.args)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParseFlags: %v", err)
				}
				if m.Config.Keys.Source() != "dev-file" {
					t.Fatalf("source %q, want dev-file", m.Config.Keys.Source())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseFlags: %v, want a refusal mentioning %q", err, tt.want)
			}
			if tt.want != "--insecure-no-auth" && (!strings.Contains(err.Error(), "CODEC_SERVER_KEYS_FILE") || !strings.Contains(err.Error(), "--keys-file") || !strings.Contains(err.Error(), "VAULT_ADDR")) {
				t.Fatalf("error %q does not name the settings it expected", err)
			}
		})
	}
}

func keysCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = runKeysWithInput(args, strings.NewReader(stdin), &o, &e, func(string) (string, bool) { return "", false })
	return o.String(), e.String(), code
}

// TestKeysStagedRotationCommands runs add, promote, retire, add-legacy and
// list as an operator would.
func TestKeysStagedRotationCommands(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.json")
	if _, e, code := keysCmd(t, "", "new", "--file", file); code != 0 {
		t.Fatalf("new: %s", e)
	}
	first, _ := keyring.ListFile(file)
	if _, e, code := keysCmd(t, "", "add", "--file", file); code != 0 {
		t.Fatalf("add: %s", e)
	}
	infos, _ := keyring.ListFile(file)
	added := infos[1]
	if added.Active {
		t.Fatal("keys add made the key active")
	}
	out, _, _ := keysCmd(t, "", "list", "--file", file)
	if !strings.Contains(out, "decrypt only") {
		t.Fatalf("list does not mark the added key decrypt only:\n%s", out)
	}
	if _, e, code := keysCmd(t, "", "promote", added.ID, "--file", file); code != 0 {
		t.Fatalf("promote: %s", e)
	}
	// The first key was active a moment ago: retire refuses it.
	_, e, code := keysCmd(t, "", "retire", first[0].ID, "--file", file)
	if code != 1 || !strings.Contains(e, "--force") {
		t.Fatalf("retire of a just-replaced key: exit %d %s", code, e)
	}
	if _, e, code := keysCmd(t, "", "retire", added.ID, "--file", file, "--force"); code != 1 || !strings.Contains(e, "active key") {
		t.Fatalf("retire of the active key with --force: exit %d %s", code, e)
	}
	_, e, code = keysCmd(t, "", "retire", "--force", "--file", file, first[0].ID)
	if code != 0 || !strings.Contains(e, "warning") {
		t.Fatalf("forced retire: exit %d %s", code, e)
	}
	// The samples' static key under their default empty ID, from stdin.
	if _, e, code := keysCmd(t, "test-key-test-key-test-key-test!\n", "add-legacy", "--id", "", "--file", file); code != 0 {
		t.Fatalf("add-legacy: %s", e)
	}
	if _, e, code := keysCmd(t, "", "add-legacy", "--file", file); code != 2 || !strings.Contains(e, "--id") {
		t.Fatalf("add-legacy without --id: exit %d %s", code, e)
	}
	out, _, _ = keysCmd(t, "", "list", "--file", file)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "retired") || !strings.HasSuffix(lines[2], "active") || !strings.HasPrefix(lines[3], `""`) || !strings.Contains(lines[3], "legacy") {
		t.Fatalf("list:\n%s", out)
	}
	if strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("test-key-test-key-test-key-test!"))) || strings.Contains(out, "test-key") {
		t.Fatal("list shows key material")
	}
}

// TestLegacyKeyWithEmptyIDDecodesSamplePayloads: a key added with
// `keys add-legacy` and an empty --id decodes what the samples seal by default.
func TestLegacyKeyWithEmptyIDDecodesSamplePayloads(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.json")
	if _, e, code := keysCmd(t, "", "new", "--file", file); code != 0 {
		t.Fatalf("new: %s", e)
	}
	static := []byte("test-key-test-key-test-key-test!")
	keyFile := filepath.Join(t.TempDir(), "static.key")
	if err := os.WriteFile(keyFile, static, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, e, code := keysCmd(t, "", "add-legacy", "--id", "", "--key-file", keyFile, "--file", file); code != 0 {
		t.Fatalf("add-legacy: %s", e)
	}
	orig := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"from the samples"`)}
	sample := keyringtest.SealLikeSamples(t, static, "", orig)
	m := runMain(t, "--listen", "127.0.0.1:0", "--keys-file", file, "--audit=false")
	b, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{sample}})
	status, out := post(t, m.URL()+"/decode", "", b)
	var got commonpb.Payloads
	if status != 200 || protojson.Unmarshal(out, &got) != nil || len(got.Payloads) != 1 || !proto.Equal(got.Payloads[0], orig) {
		t.Fatalf("decode: %d %s", status, out)
	}
}

func encodeKeyID(t *testing.T, url string) string {
	t.Helper()
	b, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`1`)}}})
	status, out := post(t, url+"/encode", "", b)
	var got commonpb.Payloads
	if status != 200 || protojson.Unmarshal(out, &got) != nil || len(got.Payloads) != 1 {
		t.Fatalf("encode: %d %s", status, out)
	}
	return string(got.Payloads[0].Metadata["encryption-key-id"])
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServerRotationAndFailingReload runs the server on a key file it
// reloads every 50ms: a rotation reaches /encode within a reload, and a
// file that stops parsing shows in the log each time, in a metric, and in
// /readyz after repeated failures.
func TestServerRotationAndFailingReload(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(file, time.Now()); err != nil {
		t.Fatal(err)
	}
	m := NewMain()
	logs := &syncWriter{w: &bytes.Buffer{}}
	m.Stderr = logs
	m.LookupEnv = func(string) (string, bool) { return "", false }
	if err := m.ParseFlags(context.Background(), []string{"--listen", "127.0.0.1:0", "--keys-file", file, "--keys-reload", "50ms", "--audit=false"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })

	before := encodeKeyID(t, m.URL())
	info, err := keyring.RotateFile(file, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := keyring.FileKeyIDPrefix + info.ID
	deadline := time.Now().Add(10 * time.Second)
	for got := encodeKeyID(t, m.URL()); got != want; got = encodeKeyID(t, m.URL()) {
		if time.Now().After(deadline) {
			t.Fatalf("10s after the rotation /encode still seals under %q (before: %q), want %q", got, before, want)
		}
		time.Sleep(20 * time.Millisecond) // polling for the reload, with a deadline
	}

	// Break the file: /readyz turns 503 after repeated failures.
	if err := os.WriteFile(file, []byte(`{"version":2,`), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		status, body := get(t, m.URL()+"/readyz")
		if status == http.StatusServiceUnavailable {
			if strings.Contains(body, "keys.json") || strings.Contains(body, "version") {
				t.Fatalf("/readyz shows internal detail: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d 10s after the key file broke", status)
		}
		time.Sleep(20 * time.Millisecond) // polling for the reloads, with a deadline
	}
	if n := strings.Count(logs.String(), "key file reload failed"); n < 3 {
		t.Fatalf("%d reload failure log lines, want one per failure:\n%s", n, logs.String())
	}
	_, metrics := get(t, m.URL()+"/metrics")
	if !strings.Contains(metrics, `codec_server_key_file_reloads_total{outcome="error"}`) || strings.Contains(metrics, "codec_server_key_file_reload_failures 0\n") {
		t.Fatalf("metrics do not show the failing reloads:\n%s", grepLines(metrics, "key_file"))
	}
	// Fixed again: ready again.
	if _, err := keyring.CreateFile(file+".new", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for status, _ := get(t, m.URL()+"/readyz"); status != http.StatusOK; status, _ = get(t, m.URL()+"/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after the key file was fixed", status)
		}
		time.Sleep(20 * time.Millisecond) // polling for the reload, with a deadline
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
