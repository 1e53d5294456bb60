package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// runMain starts Main in-process with args (no environment) and returns
// it; it is closed when the test ends.
func runMain(t *testing.T, args ...string) *Main {
	t.Helper()
	m := NewMain()
	var logs bytes.Buffer
	m.Stderr = &syncWriter{w: &logs}
	m.LookupEnv = func(string) (string, bool) { return "", false }
	if err := m.ParseFlags(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func post(t *testing.T, url, host string, b []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// TestNoAuthOnLoopbackRefusesOtherHosts: without auth on loopback, a
// request for another host name (DNS rebinding) gets 403 with a JSON error.
func TestNoAuthOnLoopbackRefusesOtherHosts(t *testing.T) {
	t.Parallel()
	keys := filepath.Join(t.TempDir(), "k.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	m := runMain(t, "--listen", "127.0.0.1:0", "--keys-file", keys, "--audit=false")
	b := []byte(`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IngiCg=="}]}`)
	_, port, _ := strings.Cut(m.Addr(), ":")
	for _, host := range []string{"rebind.attacker.example:" + port, "rebind.attacker.example"} {
		status, out := post(t, m.URL()+"/encode", host, b)
		if status != 403 || !bytes.Contains(out, []byte(`{"error":`)) {
			t.Errorf("Host %s: %d %s, want 403 with a JSON error", host, status, out)
		}
	}
	for _, host := range []string{"", "localhost:" + port, "[::1]:" + port} {
		if status, out := post(t, m.URL()+"/encode", host, b); status != 200 {
			t.Errorf("Host %q: %d %s, want 200", host, status, out)
		}
	}
}
