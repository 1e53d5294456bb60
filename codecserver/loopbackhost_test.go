package codecserver_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/envelopecodec/envelope/codecserver"
)

func TestLoopbackHostOnly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"localhost", true}, {"localhost:8081", true}, {"LocalHost:8081", true},
		{"127.0.0.1", true}, {"127.0.0.1:8081", true}, {"127.1.2.3:80", true},
		{"[::1]", true}, {"[::1]:8081", true},
		{"", false}, {"evil.example", false}, {"evil.example:8081", false},
		{"localhost.evil.example:8081", false}, {"localhost.:8081", false},
		{"10.0.0.1:8081", false}, {"[::2]:8081", false}, {"0.0.0.0:8081", false},
		{"[fe80::1%25lo]:8081", false},
	} {
		if got := codecserver.IsLoopbackHost(tt.host); got != tt.want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}

	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) { c.LoopbackHostOnly = true }})
	open := newEnv(t, envOptions{noAuth: true})
	do := func(e *env, path, host string) answer {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body(t, plainPayloads(1, 8))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{status: resp.StatusCode, header: resp.Header, body: b}
	}
	for _, host := range []string{"attacker.example", "attacker.example:8081"} {
		a := do(e, "/encode", host)
		if a.status != 403 || !bytes.Contains(a.body, []byte(`"error":`)) {
			t.Errorf("Host %s: %d %s, want 403 with a JSON error", host, a.status, a.body)
		}
		if line := logLine(t, e.log.String(), a.header.Get("X-Request-Id")); line == nil || line["reason"] != "host_not_allowed" {
			t.Errorf("Host %s: no failure log line with reason host_not_allowed: %v", host, line)
		}
		if a := do(open, "/encode", host); a.status != 200 {
			t.Errorf("Host %s without LoopbackHostOnly: %d, want 200", host, a.status)
		}
	}
	for _, host := range []string{"localhost:8081", "127.0.0.1:8081", "[::1]:8081", "localhost"} {
		if a := do(e, "/encode", host); a.status != 200 {
			t.Errorf("Host %s: %d %s, want 200", host, a.status, a.body)
		}
	}
}
