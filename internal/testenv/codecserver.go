package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CodecServerOptions configures [StartCodecServer]. All fields are optional.
type CodecServerOptions struct {
	// Args are the codec server's flags besides --listen, e.g. --keys-file F
	// --jwks-file J, or --insecure-no-auth.
	Args []string
	// Env holds extra environment variables (KEY=VALUE). The test process's
	// own CODEC_SERVER_*, VAULT_* and AWS_* variables are never passed on;
	// CODEC_SERVER_SHUTDOWN_DELAY is 0 unless Env or Args set it.
	Env []string
	// Dir is the working directory; by default a temporary folder, so the
	// development key file (.data/dev-keyring.json) never lands in the
	// repository.
	Dir string
	// StartTimeout bounds the wait for /healthz. Default: 30s.
	StartTimeout time.Duration
}

// CodecServer is a running bin/codec-server.
type CodecServer struct {
	// URL is the server's base URL, http://127.0.0.1:port.
	URL string

	proc *Process
}

// StartCodecServer runs bin/codec-server (built by `make build`) on a free
// loopback port with opts, waits until GET /healthz answers 200 and stops it
// when the test ends.
func StartCodecServer(t testing.TB, opts CodecServerOptions) *CodecServer {
	t.Helper()
	return startCodecServer(t, opts, "http", nil, http.DefaultClient)
}

// StartHTTPSCodecServer runs bin/codec-server like [StartCodecServer], but
// serving HTTPS with cert (--tls-cert, --tls-key), which ca issued. URL is
// https://127.0.0.1:port; the server is ready when GET /healthz answers 200
// to a client that trusts only ca.
func StartHTTPSCodecServer(t testing.TB, opts CodecServerOptions, ca *TestCA, cert *ServerCert) *CodecServer {
	t.Helper()
	return startCodecServer(t, opts, "https", []string{"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile}, ca.Client())
}

// startCodecServer starts bin/codec-server on a free port with --listen,
// then extra, then opts.Args, and waits until GET scheme://addr/healthz
// answers 200 to client. It tries another port when the one chosen was
// taken in between.
func startCodecServer(t testing.TB, opts CodecServerOptions, scheme string, extra []string, client *http.Client) *CodecServer {
	t.Helper()
	bin := builtBinary(t, "codec-server")
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	var last error
	for try := 0; try < 3; try++ {
		addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		args := append(append([]string{"--listen", addr}, extra...), opts.Args...)
		cmd := exec.Command(bin, args...)
		cmd.Dir = opts.Dir
		// Tests stop their servers with SIGTERM at the end: no drain
		// (--shutdown-delay) unless opts ask for one.
		cmd.Env = append(append(cleanCodecEnv(os.Environ()), "CODEC_SERVER_SHUTDOWN_DELAY=0"), opts.Env...)
		cs := &CodecServer{URL: scheme + "://" + addr}
		cs.proc = StartProcess(t, "codec-server", cmd)
		ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
		last = waitStatus(ctx, client, cs.URL+"/healthz", http.StatusOK, cs.proc)
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

// BuiltBinary returns bin/name as `make build` left it: it fails the test
// when the binary is missing or older than a Go source of the module, so no
// test runs yesterday's server (scripts that run bin/codec-server, such as
// the demo, need this check too).
func BuiltBinary(t testing.TB, name string) string {
	t.Helper()
	return builtBinary(t, name)
}

// builtBinary is Binary for the binaries `make build` makes. It fails the
// test when a Go source of the module is newer than the binary, so a bare
// `go test` after an edit never tests yesterday's server.
func builtBinary(t testing.TB, name string) string {
	t.Helper()
	root := RepoRoot(t)
	p := filepath.Join(root, "bin", name)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("testenv: %s is missing; run `make build` (make test does) to build it: %v", p, err)
	}
	if newer := newerSource(root, fi.ModTime()); newer != "" {
		t.Fatalf("testenv: %s is older than %s; run `make build` (make test does)", p, newer)
	}
	return p
}

// newerSource returns a non-test Go file of the module (not of the nested
// deploy/ and internal/oidcprovider modules, nor of npm packages in a
// node_modules folder, which go.mod ignores) modified after t, or "".
func newerSource(root string, t time.Time) string {
	var found string
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			switch rel, _ := filepath.Rel(root, path); rel {
			case ".git", "bin", ".data", "artifacts", "deploy", filepath.Join("internal", "oidcprovider"):
				return filepath.SkipDir
			}
			if d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			if info, err := d.Info(); err == nil && info.ModTime().After(t) {
				found, _ = filepath.Rel(root, path)
			}
		}
		return nil
	})
	return found
}

// Output returns what the codec server logged so far.
func (cs *CodecServer) Output() string { return cs.proc.Output() }

// Process returns the server's process.
func (cs *CodecServer) Process() *Process { return cs.proc }

// WaitOutput polls the server's log until it contains substr.
func (cs *CodecServer) WaitOutput(ctx context.Context, substr string, timeout time.Duration) error {
	return cs.proc.WaitOutput(ctx, substr, timeout)
}

// waitStatus polls url with c until it answers want, the process exits or
// ctx ends.
func waitStatus(ctx context.Context, c *http.Client, url string, want int, p *Process) error {
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

// cleanCodecEnv drops the variables that configure the codec server and
// Vault, so the test's flags alone decide.
func cleanCodecEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "CODEC_SERVER_") || strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
