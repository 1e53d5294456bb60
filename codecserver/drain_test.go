package codecserver_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestDrainKeepsServingWhileNotReady: after Drain, /readyz answers 503
// (shutting down) while /healthz, /encode and /decode still answer 200,
// each answer asking the client to close its connection.
func TestDrainKeepsServingWhileNotReady(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	srv, err := codecserver.New(codecserver.Config{Codec: c, Keyring: kr, Unauthenticated: true, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	do := func(method, path string, b []byte) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, string(out)
	}
	plain := []byte(`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"MQ=="}]}`)
	if resp, _ := do("GET", "/readyz", nil); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before Drain: /readyz %d (close %v), want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	srv.Drain()
	resp, out := do("GET", "/readyz", nil)
	if resp.StatusCode != 503 || !strings.Contains(out, "shutting down") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("/readyz while draining: %d %s (Retry-After %q), want 503 shutting down with a Retry-After", resp.StatusCode, out, resp.Header.Get("Retry-After"))
	}
	// Every probe of a balancer during the drain gets that 503: it is the
	// drain working, logged at INFO, not an ERROR line a second.
	if strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), `"reason":"not_ready"`) {
		t.Errorf("the drain's /readyz answer is logged as an error, or not at all:\n%s", logs.String())
	}
	_, sealed := do("POST", "/encode", plain)
	for _, tc := range []struct {
		method, path string
		body         []byte
	}{{"GET", "/healthz", nil}, {"POST", "/encode", plain}, {"POST", "/decode", []byte(sealed)}} {
		resp, out := do(tc.method, tc.path, tc.body)
		if resp.StatusCode != 200 {
			t.Errorf("%s while draining: %d %s, want 200", tc.path, resp.StatusCode, out)
		}
		if !resp.Close {
			t.Errorf("%s while draining: the answer keeps the connection open; want Connection: close", tc.path)
		}
	}
}
