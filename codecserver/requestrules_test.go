package codecserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// rawDo sends a request whose headers are given as a list, so that one
// header can appear twice.
func rawDo(t *testing.T, url string, b []byte, headers [][2]string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestAmbiguousHeadersAndNamespaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sealed := body(t, e.sealed("default", 1))
	good := e.bearer("default:read", "payments:read")
	json := [2]string{"Content-Type", "application/json"}
	tests := []struct {
		name    string
		path    string
		headers [][2]string
		want    int
		reason  string
	}{
		{"one of each header decodes", "/decode", [][2]string{json, {"Authorization", good}, {"X-Namespace", "default"}}, 200, ""},
		{"two X-Namespace headers are 400", "/decode", [][2]string{json, {"Authorization", good}, {"X-Namespace", "default"}, {"X-Namespace", "payments"}}, 400, "duplicate_header"},
		{"two equal X-Namespace headers are 400 too", "/decode", [][2]string{json, {"Authorization", good}, {"X-Namespace", "default"}, {"X-Namespace", "default"}}, 400, "duplicate_header"},
		{"two Authorization headers are 400", "/decode", [][2]string{json, {"Authorization", good}, {"Authorization", "Bearer x"}}, 400, "duplicate_header"},
		{"namespace . is 400", "/decode", [][2]string{json, {"Authorization", good}, {"X-Namespace", "."}}, 400, "namespace"},
		{"namespace .. is 400", "/decode", [][2]string{json, {"Authorization", good}, {"X-Namespace", ".."}}, 400, "namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h := rawDo(t, e.url+tt.path, sealed, tt.headers)
			if status != tt.want {
				t.Fatalf("status %d, want %d", status, tt.want)
			}
			if tt.reason != "" {
				if line := logLine(t, e.log.String(), h.Get("X-Request-Id")); line == nil || line["reason"] != tt.reason {
					t.Errorf("failure log line %v, want reason %s", line, tt.reason)
				}
			}
		})
	}
}

func TestRefusedNamespaceIsAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	bad := "bad\"ns\u00e9" + strings.Repeat("x", 300)
	status, h := rawDo(t, e.url+"/decode", body(t, e.sealed("default", 1)), [][2]string{
		{"Content-Type", "application/json"}, {"Authorization", e.bearer("default:read")}, {"X-Namespace", bad},
	})
	if status != 400 {
		t.Fatalf("status %d, want 400", status)
	}
	line := logLine(t, e.audit.String(), h.Get("X-Request-Id"))
	if line == nil {
		t.Fatal("no audit line for the refused request")
	}
	ns, _ := line["namespace"].(string)
	if !strings.HasPrefix(ns, `"bad\"ns\u00e9xx`) || len(ns) > 100 {
		t.Errorf("audited namespace %q: want the escaped value truncated to 64 bytes", ns)
	}
}

func TestContentTypeMustBeJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true})
	plain := body(t, plainPayloads(1, 8))
	for _, tt := range []struct {
		ct   string
		want int
	}{
		{"application/json", 200},
		{"application/json; charset=utf-8", 200},
		{"Application/JSON", 200},
		{"", 415},
		{"text/plain", 415},
		{"application/x-www-form-urlencoded", 415},
		{"multipart/form-data; boundary=x", 415},
		{"application/jsonx", 415},
	} {
		for _, path := range []string{"/encode", "/decode"} {
			h := [][2]string{}
			if tt.ct != "" {
				h = append(h, [2]string{"Content-Type", tt.ct})
			}
			if status, _ := rawDo(t, e.url+path, plain, h); status != tt.want {
				t.Errorf("POST %s with Content-Type %q: %d, want %d", path, tt.ct, status, tt.want)
			}
		}
	}
}

// TestEncodeRefusesPayloadsClaimingEncryption: the codec passes payloads
// that say "binary/encrypted" through, so /encode refuses them rather than
// return plaintext under an encrypted label.
func TestEncodeRefusesPayloadsClaimingEncryption(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true})
	fake := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/encrypted")}, Data: []byte(`"top secret plaintext"`)}
	a := e.do(call{path: "/encode", body: body(t, append(plainPayloads(1, 8), fake))})
	if a.status != 422 || bytes.Contains(a.body, []byte("top secret")) {
		t.Fatalf("status %d, body %s; want 422 without the plaintext", a.status, a.body)
	}
	if line := logLine(t, e.log.String(), a.header.Get("X-Request-Id")); line == nil || line["reason"] != "already_encrypted" {
		t.Errorf("failure log line %v, want reason already_encrypted", line)
	}
	// A real sealed payload sent to /decode still works, and plain
	// payloads still encode.
	if a := e.do(call{path: "/encode", body: body(t, plainPayloads(2, 8))}); a.status != 200 {
		t.Errorf("encode of plain payloads: %d", a.status)
	}
}

// countingChecker counts keyring checks, each taking a while.
type countingChecker struct {
	*keyringtest.Keyring
	n atomic.Int64
}

func (c *countingChecker) Check(ctx context.Context) error {
	c.n.Add(1)
	select {
	case <-time.After(50 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.Keyring.Check(ctx)
}

func TestReadyzIsCachedAndMerged(t *testing.T) {
	t.Parallel()
	kr := &countingChecker{Keyring: keyringtest.New()}
	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) {
		c.Keyring = kr
		c.ReadyzCacheTTL = time.Minute
	}})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(e.url + "/readyz")
			if err != nil || resp.StatusCode != 200 {
				bad.Add(1)
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	for range 20 {
		if a := e.do(call{method: "GET", path: "/readyz"}); a.status != 200 {
			t.Fatalf("readyz %d", a.status)
		}
	}
	if bad.Load() > 0 {
		t.Errorf("%d concurrent probes failed", bad.Load())
	}
	if n := kr.n.Load(); n != 1 {
		t.Errorf("50 probes made %d keyring checks, want 1", n)
	}
	var v map[string]string
	a := e.do(call{method: "GET", path: "/readyz"})
	if err := json.Unmarshal(a.body, &v); err != nil || v["status"] != "ready" {
		t.Errorf("readyz body %s", a.body)
	}
}

// panickingChecker is a keyring whose readiness check panics.
type panickingChecker struct{ *keyringtest.Keyring }

func (panickingChecker) Check(context.Context) error { panic("check bug") }

// TestReadyzSurvivesAPanickingCheck: the check runs in a goroutine of its
// own, out of the recoverer's reach; a panic there must answer 503, not
// crash the server.
func TestReadyzSurvivesAPanickingCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) {
		c.Keyring = panickingChecker{keyringtest.New()}
	}})
	if a := e.do(call{method: "GET", path: "/readyz"}); a.status != 503 {
		t.Fatalf("readyz with a panicking check: %d, want 503", a.status)
	}
	if a := e.do(call{method: "GET", path: "/healthz"}); a.status != 200 {
		t.Fatalf("healthz after it: %d", a.status)
	}
}
