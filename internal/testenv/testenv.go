// Package testenv starts the real components the integration tests need
// (Vault, the AWS KMS emulator local-kms, the Temporal dev server, the
// Temporal UI server, an OpenID provider, headless Chromium, the codec
// server over HTTP or HTTPS) the same way for every test, on free loopback
// ports, and tears them down at the end of the test. The programs are the
// repository's bin/<name>, which scripts/tools.sh (`make tools`, run by
// `make test`) makes: a link to the program found on PATH, or the program
// built from the Go module proxy. So the scripts, `make demo` and the tests
// use the same binaries. A missing binary fails the test, it never skips.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// RepoRoot returns the repository root (the folder holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of bin/<name> in the repository and fails the
// test when it is missing: run `make tools` (make test does), which links
// it to the program on PATH or builds it.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: %s is missing; run `make tools` (it takes %s from PATH or builds it into bin/): %v", p, name, err)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitHTTP polls url until it answers with a status below 500 or the
// timeout passes.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
			last = fmt.Errorf("status %d", resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s not ready after %s: %v", url, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitTCP polls addr until it accepts a TCP connection or the timeout
// passes.
func WaitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("testenv: %s not accepting connections after %s: %v", addr, timeout, last)
}
