package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// StartHTTPSCodecServer runs bin/codec-server like [StartCodecServer], but
// serving HTTPS with cert (--tls-cert, --tls-key), which ca issued. URL is
// https://127.0.0.1:port; the server is ready when GET /healthz answers 200
// to a client that trusts only ca.
func StartHTTPSCodecServer(t testing.TB, opts CodecServerOptions, ca *TestCA, cert *ServerCert) *CodecServer {
	t.Helper()
	bin := builtBinary(t, "codec-server")
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	client := ca.Client()
	var last error
	for try := 0; try < 3; try++ {
		addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		args := append([]string{"--listen", addr, "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile}, opts.Args...)
		cmd := exec.Command(bin, args...)
		cmd.Dir = opts.Dir
		cmd.Env = append(cleanCodecEnv(os.Environ()), opts.Env...)
		cs := &CodecServer{URL: "https://" + addr}
		cs.proc = StartProcess(t, "codec-server", cmd)
		ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
		last = waitStatusWith(ctx, client, cs.URL+"/healthz", http.StatusOK, cs.proc)
		cancel()
		if last == nil {
			return cs
		}
		cs.proc.Stop()
		last = fmt.Errorf("codec server not ready: %v\n%s", last, cs.proc.Output())
		// The port FreePort chose was taken by someone else in between.
		if !strings.Contains(cs.proc.Output(), "address already in use") {
			break
		}
	}
	t.Fatalf("testenv: %v", last)
	return nil
}

// waitStatusWith is waitStatus with the given client.
func waitStatusWith(ctx context.Context, c *http.Client, url string, want int, p *Process) error {
	var last string
	for {
		if p.Exited() {
			return fmt.Errorf("process exited: %v", p.Err())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w; last answer: %s", url, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
