package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// TestSIGTERMDrainsBeforeClosing runs the binary with a drain
// (CODEC_SERVER_SHUTDOWN_DELAY, the flag's environment twin) and sends
// SIGTERM: during the delay /readyz answers 503, /healthz 200, and an
// encode is served (200); then the server closes its listener and exits 0.
func TestSIGTERMDrainsBeforeClosing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "k.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, []string{"CODEC_SERVER_SHUTDOWN_DELAY=3s"}, "--listen", "127.0.0.1:0", "--keys-file", keys)
	url := p.ready(t)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.logContains("draining: /readyz answers 503") {
		t.Fatalf("no drain logged after SIGTERM:\n%s", p.log())
	}
	if status, body := get(t, url+"/readyz"); status != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz during the drain: %d %s, want 503 shutting down", status, body)
	}
	if status, body := get(t, url+"/healthz"); status != 200 {
		t.Errorf("/healthz during the drain: %d %s, want 200", status, body)
	}
	resp, err := http.Post(url+"/encode", "application/json", bytes.NewReader([]byte(`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"MQ=="}]}`)))
	if err != nil {
		t.Fatalf("encode during the drain: %v\n%s", err, p.log())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "encryption-key-id") {
		t.Errorf("encode during the drain: %d %s, want 200 and a sealed payload", resp.StatusCode, b)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exit code %d after the drain, want 0:\n%s", code, p.log())
	}
	log := p.log()
	drain, closing, stopped := strings.Index(log, "draining:"), strings.Index(log, "closing the listener"), strings.Index(log, "codec server stopped")
	if !(drain >= 0 && drain < closing && closing < stopped) {
		t.Errorf("want the log lines draining, closing the listener, codec server stopped in this order:\n%s", log)
	}
}

// TestSecondSignalEndsTheDrain: a second SIGTERM during a long drain
// closes the listener at once, and the server still exits 0.
func TestSecondSignalEndsTheDrain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "k.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, nil, "--listen", "127.0.0.1:0", "--keys-file", keys, "--shutdown-delay", "1h")
	p.ready(t)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.logContains("draining: /readyz answers 503") {
		t.Fatalf("no drain logged after SIGTERM:\n%s", p.log())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 || !strings.Contains(p.log(), "second signal") {
		t.Errorf("after a second SIGTERM: exit %d, want 0 with the log line \"second signal\":\n%s", code, p.log())
	}
}
