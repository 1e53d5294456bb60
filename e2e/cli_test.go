package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/internal/testenv"
)

// TestCLIDecodesThroughCodecServer reads a history stored by the examples
// with the temporal CLI through the codec server, which checks JWTs: a
// token with read permission on the namespace sees the plaintext, other
// tokens get an error and no plaintext.
func TestCLIDecodesThroughCodecServer(t *testing.T) {
	t.Parallel()
	keys := newKeyFile(t)
	iss := jwttest.New(t, jwttest.Options{})
	cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: []string{
		"--keys-file", keys,
		"--jwks-file", iss.WriteJWKSFile(t, ""),
		"--jwt-issuer", iss.IssuerURL(),
		"--jwt-audience", iss.Audience(),
	}})
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{})
	e := env{temporal: tc, keyArgs: []string{"--keys-file", keys}}
	s := newSecrets(t)
	startWorker(t, e, "tq-cli")
	r := runStarter(t, e, "tq-cli", s)

	reader := iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}})
	show := func(ctx context.Context, extra ...string) testenv.CLIResult {
		return tc.CLI(ctx, append([]string{"workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json"}, extra...)...)
	}

	t.Run("allowed", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			args []string
		}{
			// The CLI sends an empty X-Namespace without -n: the server's
			// default namespace, "default".
			{"a reader of the namespace sees the plaintext without -n", []string{"--codec-endpoint", cs.URL, "--codec-auth", reader}},
			{"a reader of the namespace sees the plaintext with -n", []string{"-n", "default", "--codec-endpoint", cs.URL, "--codec-auth", reader}},
			{"the namespace may be in the endpoint's path", []string{"--codec-endpoint", cs.URL + "/default", "--codec-auth", reader}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				res := show(ctx, tt.args...)
				if res.Err != nil {
					t.Fatalf("%s\ncodec server:\n%s", res, cs.Output())
				}
				assertPlaintext(t, "workflow show", res.Stdout, s)
				ok := waitAuditLine(cs.Output, func(a map[string]any) bool {
					return a["subject"] == jwttest.DefaultSubject && a["namespace"] == "default" && a["status"] == 200.0
				})
				if !ok {
					t.Errorf("no audit line for a successful decode by %s", jwttest.DefaultSubject)
				}
				if strings.Contains(res.Stdout, "YmluYXJ5L2VuY3J5cHRlZA==") {
					t.Errorf("workflow show still has binary/encrypted payloads:\n%s", res.Stdout)
				}
			})
		}
		t.Run("describe shows the memo decoded", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res := tc.CLI(ctx, "workflow", "describe", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json", "--codec-endpoint", cs.URL, "--codec-auth", reader)
			if res.Err != nil {
				t.Fatal(res)
			}
			var doc any
			if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, res.Stdout)
			}
			all := res.Stdout + "\n" + strings.Join(decodedStrings(doc), "\n")
			for _, want := range []string{s.Name, s.Email} {
				if !strings.Contains(all, want) {
					t.Errorf("describe does not show the memo's %q:\n%s", want, res.Stdout)
				}
			}
		})
	})

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			auth    string
			subject string // in the audit line; "" when the token was refused
			status  float64
		}{
			{"a token for another namespace gets 403 and no plaintext", iss.Bearer(t, jwttest.Claims{Subject: "mallory@example.com", Permissions: []string{"payments:read"}}), "mallory@example.com", 403},
			{"an expired token gets 401 and no plaintext", iss.Bearer(t, jwttest.Claims{Subject: "late@example.com", Permissions: []string{"default:read"}, IssuedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)}), "", 401},
			{"no token gets 401 and no plaintext", "", "", 401},
			{"a token from another issuer gets 401 and no plaintext", jwttest.New(t, jwttest.Options{}).Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}}), "", 401},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				args := []string{"--codec-endpoint", cs.URL}
				if tt.auth != "" {
					args = append(args, "--codec-auth", tt.auth)
				}
				res := show(ctx, args...)
				if res.Err == nil {
					t.Errorf("the CLI succeeded, want a failure:\n%s", res)
				}
				for _, secret := range s.all() {
					if strings.Contains(res.Stdout+res.Stderr, secret) {
						t.Errorf("plaintext %q in the refused CLI's output", secret)
					}
				}
				// The CLI only says "context deadline exceeded"; the codec
				// server's audit log says who was refused and why.
				t.Logf("CLI said: %s", strings.TrimSpace(res.Stderr))
				found := waitAuditLine(cs.Output, func(a map[string]any) bool {
					return a["route"] == "decode" && a["status"] == tt.status && a["subject"] == tt.subject
				})
				if !found {
					t.Errorf("no audit line for a decode by %q answered %v:\n%s", tt.subject, tt.status, cs.Output())
				}
			})
		}
	})
}

// waitAuditLine polls the codec server's output until an audit record
// matches: the server writes audit lines in batches (every second by
// default, --audit-flush-interval).
func waitAuditLine(output func() string, match func(map[string]any) bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, a := range auditLines(output()) {
			if match(a) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// auditLines returns the codec server's audit records (JSON lines with
// "msg": "audit") from its output.
func auditLines(out string) []map[string]any {
	var recs []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "audit" {
			recs = append(recs, m)
		}
	}
	return recs
}
