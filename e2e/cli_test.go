package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
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
	// The views the README and the demo tell people to use, as printed.
	show := func(ctx context.Context, extra ...string) testenv.CLIResult {
		return tc.CLI(ctx, append([]string{"workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "--detailed"}, extra...)...)
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
				assertLines(t, "workflow show --detailed", res.Stdout, s.detailedLines()...)
				assertNotShown(t, "workflow show --detailed", res.Stdout, "binary/encrypted", "YmluYXJ5L2VuY3J5cHRlZA==")
				ok := waitAuditLine(cs.Output, func(a map[string]any) bool {
					return a["subject"] == jwttest.DefaultSubject && a["namespace"] == "default" && a["status"] == 200.0
				})
				if !ok {
					t.Errorf("no audit line for a successful decode by %s", jwttest.DefaultSubject)
				}
			})
		}
		t.Run("the default view shows the result", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "--codec-endpoint", cs.URL, "--codec-auth", reader)
			if res.Err != nil {
				t.Fatal(res)
			}
			assertShown(t, "workflow show", res.Stdout, `"Welcome":"Welcome aboard, `+s.Name+`!"`, `"ApprovedBy":"`+s.Approver+`"`)
			assertLines(t, "workflow show", res.Stdout, "  ResultEncoding  json/plain")
		})
		t.Run("describe shows the memo decoded", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res := tc.CLI(ctx, "workflow", "describe", "-w", r.WorkflowID, "-r", r.RunID, "--codec-endpoint", cs.URL, "--codec-auth", reader)
			if res.Err != nil {
				t.Fatal(res)
			}
			assertShown(t, "workflow describe", res.Stdout, s.describedMemo()...)
		})
	})

	// One sealed payload of the history, as the CLI sends it to /decode.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json")
	if raw.Err != nil {
		t.Fatal(raw)
	}
	var rawDoc any
	if err := json.Unmarshal([]byte(raw.Stdout), &rawDoc); err != nil {
		t.Fatal(err)
	}
	sealed := payloads(rawDoc)
	if len(sealed) == 0 {
		t.Fatalf("no payload in the history:\n%s", raw.Stdout)
	}
	// The workflow input: it holds every field of the customer record.
	body, _ := json.Marshal(map[string]any{"payloads": []any{sealed[0]}})

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			auth    string
			subject string // in the audit line; "" when the token was refused
			status  float64
			outcome string
		}{
			{"a token for another namespace gets 403 and no plaintext", iss.Bearer(t, jwttest.Claims{Subject: "mallory@example.com", Permissions: []string{"payments:read"}}), "mallory@example.com", 403, "forbidden"},
			{"an expired token gets 401 and no plaintext", iss.Bearer(t, jwttest.Claims{Subject: "late@example.com", Permissions: []string{"default:read"}, IssuedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)}), "", 401, "unauthenticated"},
			{"no token gets 401 and no plaintext", "", "", 401, "unauthenticated"},
			{"a token from another issuer gets 401 and no plaintext", jwttest.New(t, jwttest.Options{}).Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}}), "", 401, "unauthenticated"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()

				// The request the CLI makes, sent by hand: its answer
				// carries the request ID that ties it to its audit line.
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, cs.URL+"/decode", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Namespace", "")
				if tt.auth != "" {
					req.Header.Set("Authorization", tt.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if float64(resp.StatusCode) != tt.status {
					t.Errorf("POST /decode answered %d, want %v: %s", resp.StatusCode, tt.status, answer)
				}
				// The body as sent, and base64-decoded where it is JSON:
				// a payload in an answer would be base64.
				assertNotShown(t, "the refusal's body", string(answer), s.all()...)
				var answerDoc any
				if json.Unmarshal(answer, &answerDoc) == nil {
					assertNotShown(t, "the refusal's body, base64-decoded", strings.Join(decodedStrings(answerDoc), "\n"), s.all()...)
				}
				id := resp.Header.Get("X-Request-Id")
				if id == "" {
					t.Fatalf("the refusal has no X-Request-Id")
				}
				var line map[string]any
				found := waitAuditLine(cs.Output, func(a map[string]any) bool {
					if a["request_id"] == id {
						line = a
						return true
					}
					return false
				})
				switch {
				case !found:
					t.Errorf("no audit line with request_id %s:\n%s", id, cs.Output())
				case line["route"] != "decode" || line["status"] != tt.status || line["subject"] != tt.subject || line["outcome"] != tt.outcome:
					t.Errorf("audit line of request %s: %v, want route decode, status %v, subject %q, outcome %s", id, line, tt.status, tt.subject, tt.outcome)
				}

				// The CLI's own view, as printed: it fails without showing
				// anything of the payloads. It never says why (it retries,
				// then reports a deadline): the server's log does.
				res := show(ctx, append([]string{"--codec-endpoint", cs.URL}, codecAuth(tt.auth)...)...)
				if res.Err == nil {
					t.Errorf("the CLI succeeded, want a failure:\n%s", res)
				}
				assertNotShown(t, "the refused CLI's output", res.Stdout+res.Stderr, s.all()...)
				assertShown(t, "the refused CLI's error", res.Stderr, "context deadline exceeded")
			})
		}
	})

	// No log line of the server, refusals and successes alike, holds
	// plaintext.
	assertNotShown(t, "the codec server's log", cs.Output(), s.all()...)
}

// codecAuth returns the CLI flags that send auth, none for "".
func codecAuth(auth string) []string {
	if auth == "" {
		return nil
	}
	return []string{"--codec-auth", auth}
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

// waitAuditedDecodes waits until the codec server's output holds an audit
// line for every decode request it has answered (its
// codec_server_requests_total of the decode routes, from /metrics) and
// returns those lines. Audit lines are flushed in batches, every second by
// default: reading them right after the requests would miss the last ones.
func waitAuditedDecodes(ctx context.Context, cs *testenv.CodecServer) ([]map[string]any, error) {
	answered, err := decodeRequests(ctx, cs.URL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		var decodes []map[string]any
		for _, a := range auditLines(cs.Output()) {
			if a["route"] == "decode" {
				decodes = append(decodes, a)
			}
		}
		if len(decodes) >= answered {
			return decodes, nil
		}
		select {
		case <-ctx.Done():
			return decodes, fmt.Errorf("%d audit lines of decodes, want one for each of the %d decode requests answered:\n%s", len(decodes), answered, cs.Output())
		case <-time.After(50 * time.Millisecond): // polling with a deadline
		}
	}
}

// decodeRequests returns how many POST /decode and /{namespace}/decode
// requests the codec server at url has answered, from its /metrics.
func decodeRequests(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s %v", resp.Status, err)
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "codec_server_requests_total{") ||
			!(strings.Contains(name, `route="/decode"`) || strings.Contains(name, `route="/{namespace}/decode"`)) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, fmt.Errorf("GET /metrics: %q: %v", line, err)
		}
		n += int(v)
	}
	if n == 0 {
		return 0, fmt.Errorf("GET /metrics counts no decode request:\n%s", body)
	}
	return n, nil
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
