package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
)

// postAs posts body to url with an Authorization header.
func postAs(t *testing.T, url, auth string, b []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}

// auditRecords polls the audit log file until it has want lines.
func auditRecords(t *testing.T, path string, want int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		var recs []map[string]any
		for _, line := range bytes.Split(b, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil {
				recs = append(recs, m)
			}
		}
		if len(recs) >= want || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(20 * time.Millisecond) // polling the file with a deadline
	}
}

// TestCrossNamespaceDecodeRefused runs the server as the binary wires it,
// with JWT auth and a keyring that has one key for every namespace (a key
// file; Vault with one transit key and no {namespace} template): a
// payload sealed through /payments/encode, posted to /sandbox/decode with a
// token allowed only sandbox:read, gets 403 and no plaintext, and the audit
// log names both namespaces. --namespace-alias lets a migrated namespace
// open it.
func TestCrossNamespaceDecodeRefused(t *testing.T) {
	t.Parallel()
	keyrings := map[string]func(t *testing.T) []string{
		"key file": func(t *testing.T) []string {
			keys := filepath.Join(t.TempDir(), "keys.json")
			if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
				t.Fatal(err)
			}
			return []string{"--keys-file", keys}
		},
		"vault with one transit key": func(t *testing.T) []string {
			v := testenv.StartVault(t)
			v.CreateKey(t, "temporal")
			return []string{"--vault-addr", v.Addr, "--vault-token", v.Token, "--vault-key", "temporal"}
		},
	}
	for name, keyArgs := range keyrings {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			iss := jwttest.New(t, jwttest.Options{})
			auditFile := filepath.Join(dir, "audit.log")
			args := append(keyArgs(t), "--listen", "127.0.0.1:0", "--jwks-file", iss.WriteJWKSFile(t, filepath.Join(dir, "jwks.json")),
				"--jwt-issuer", iss.IssuerURL(), "--jwt-audience", iss.Audience(), "--audit-log", auditFile,
				"--namespace-alias", "payments.acct=payments")
			m := NewMain()
			logs := &syncWriter{w: &bytes.Buffer{}}
			m.Stderr = logs
			m.LookupEnv = func(string) (string, bool) { return "", false }
			if err := m.ParseFlags(context.Background(), args); err != nil {
				t.Fatal(err)
			}
			if err := m.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })

			secret := "4111-1111-CARD-SECRET"
			in, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"` + secret + `"`)}}})
			status, sealed := postAs(t, m.URL()+"/payments/encode", iss.Bearer(t, jwttest.Claims{Permissions: []string{"payments:write"}}), in)
			if status != 200 {
				t.Fatalf("encode: %d %s", status, sealed)
			}
			status, out := postAs(t, m.URL()+"/sandbox/decode", iss.Bearer(t, jwttest.Claims{Subject: "mallory@example.com", Permissions: []string{"sandbox:read"}}), sealed)
			if status != http.StatusForbidden || !bytes.Contains(out, []byte(`namespace \"payments\"`)) {
				t.Fatalf("decode in sandbox: %d %s, want 403 naming payments", status, out)
			}
			// The migrated namespace may open it (--namespace-alias).
			status, out = postAs(t, m.URL()+"/payments.acct/decode", iss.Bearer(t, jwttest.Claims{Permissions: []string{"payments.acct:read"}}), sealed)
			if status != 200 || !strings.Contains(string(out), "IjQxMTEtMTExMS1DQVJELVNFQ1JFVCI=") {
				t.Fatalf("decode in payments.acct: %d %s", status, out)
			}

			recs := auditRecords(t, auditFile, 3)
			var refused map[string]any
			for _, r := range recs {
				if r["route"] == "decode" && r["status"] == 403.0 {
					refused = r
				}
			}
			if refused == nil || refused["subject"] != "mallory@example.com" || refused["namespace"] != "sandbox" || refused["sealed_namespace"] != "payments" || refused["outcome"] != "namespace_mismatch" {
				t.Errorf("audit line of the refused decode: %v", refused)
			}
			b, _ := os.ReadFile(auditFile)
			for _, s := range []string{secret, "IjQxMTEtMTExMS1DQVJELVNFQ1JFVCI="} {
				if strings.Contains(logs.String()+string(b), s) {
					t.Errorf("plaintext %q in the server's logs", s)
				}
			}
		})
	}
}

func TestParseNamespaceAliases(t *testing.T) {
	t.Parallel()
	got, err := ParseNamespaceAliases([]string{"b=a", "b=c", "d=a"})
	if err != nil || strings.Join(got["b"], ",") != "a,c" || strings.Join(got["d"], ",") != "a" || len(got) != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"b", "=a", "b=", "a=a", "b=a b", "b=a=c"} {
		if _, err := ParseNamespaceAliases([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	cfg := DefaultConfig()
	fs := cfg.FlagSet(&bytes.Buffer{})
	if err := fs.Parse([]string{"--namespace-alias", "b=a", "--refuse-v1", "--refuse-legacy", "--require-encryption"}); err != nil {
		t.Fatal(err)
	}
	if len(cfg.NamespaceAliases) != 1 || !cfg.RefuseV1 || !cfg.RefuseLegacy || !cfg.RequireEncryption {
		t.Errorf("flags not set: %+v", cfg)
	}
}
