package compose_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/deploy/internal/serverflags"
)

// TestStackWithoutDocker runs what compose.yaml runs, minus Docker: a real
// Vault dev server (bin/vault, built by `make tools`), vault-init.sh twice
// (it must be safe to re-run), then codec-server built as the Dockerfile
// builds it, with the codec-server service's environment from compose.yaml.
// It checks the service's health check command, /readyz (Vault usable with
// the key vault-init created), the Web UI's CORS preflight and an
// encode/decode round trip.
func TestStackWithoutDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Vault and the codec server")
	}
	bin := filepath.Join(serverflags.RepoRoot(t), "bin")
	if _, err := os.Stat(filepath.Join(bin, "vault")); err != nil {
		t.Fatalf("no Vault binary (run make tools): %v", err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh: %v", err)
	}
	p := load(t)
	cs := service(t, p, "codec-server")
	vaultSvc := service(t, p, "vault")
	token := env(vaultSvc, "VAULT_DEV_ROOT_TOKEN_ID")

	vaultAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	base := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+t.TempDir(), // keeps Vault's token helper out of the real home
	)
	vaultEnv := append(slices.Clone(base), "VAULT_ADDR=http://"+vaultAddr, "VAULT_TOKEN="+token)
	var vaultLog bytes.Buffer
	srv := exec.CommandContext(ctx, filepath.Join(bin, "vault"), "server", "-dev",
		"-dev-root-token-id="+token, "-dev-listen-address="+vaultAddr, "-dev-no-store-token")
	srv.Env, srv.Stdout, srv.Stderr = vaultEnv, &vaultLog, &vaultLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = srv.Wait() })

	run := func(env []string, name string, args ...string) (string, error) {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	poll(t, "Vault", func() error { _, err := run(vaultEnv, filepath.Join(bin, "vault"), "status"); return err }, &vaultLog)
	for i := range 2 {
		if out, err := run(vaultEnv, sh, "vault-init.sh"); err != nil {
			t.Fatalf("vault-init.sh run %d: %v\n%s", i+1, err, out)
		}
	}
	out, err := run(vaultEnv, filepath.Join(bin, "vault"), "read", "-field=type", "transit/keys/"+env(cs, "CODEC_SERVER_VAULT_KEY"))
	if err != nil || strings.TrimSpace(out) != "aes256-gcm96" {
		t.Fatalf("transit key %s after vault-init: %v %s", env(cs, "CODEC_SERVER_VAULT_KEY"), err, out)
	}

	// The codec server with the service's environment; only the addresses
	// differ, since this machine has no "vault" host and port 8081 may be
	// taken.
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	csEnv := slices.Clone(base)
	for k, v := range cs.Environment {
		switch k {
		case "CODEC_SERVER_LISTEN":
			*v = "0.0.0.0:" + port
		case "VAULT_ADDR":
			*v = "http://" + vaultAddr
		}
		csEnv = append(csEnv, k+"="+*v)
	}
	codecBin := serverflags.BuildBinary(t)
	var csLog bytes.Buffer
	server := exec.CommandContext(ctx, codecBin)
	server.Env, server.Stdout, server.Stderr = csEnv, &csLog, &csLog
	workDir := t.TempDir()
	server.Dir = workDir
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = server.Wait() })

	hc := slices.Clone(cs.HealthCheck.Test[1:])
	hc[len(hc)-1] = strings.Replace(hc[len(hc)-1], "127.0.0.1:8081", "127.0.0.1:"+port, 1)
	if hc[0] != serverflags.Binary {
		t.Fatalf("health check runs %s, want %s", hc[0], serverflags.Binary)
	}
	poll(t, "codec-server health check", func() error { _, err := run(csEnv, codecBin, hc[1:]...); return err }, &csLog)

	url := "http://127.0.0.1:" + port
	t.Run("ready with the Vault keyring", func(t *testing.T) {
		resp, err := http.Get(url + serverflags.ReadyPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /readyz: %s\n%s", resp.Status, csLog.String())
		}
	})

	t.Run("the Web UI's preflight is allowed", func(t *testing.T) {
		origin := "http://localhost:" + service(t, p, "temporal-ui").Ports[0].Published
		req, _ := http.NewRequest(http.MethodOptions, url+"/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q (status %s)", origin, got, resp.Status)
		}
	})

	t.Run("encode and decode round trip", func(t *testing.T) {
		const plain = `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"InNlY3JldCI="}]}`
		post := func(path, body string) string {
			req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Namespace", env(cs, "CODEC_SERVER_DEFAULT_NAMESPACE"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST %s: %s %s\n%s", path, resp.Status, b, csLog.String())
			}
			return string(b)
		}
		sealed := post("/encode", plain)
		if strings.Contains(sealed, "InNlY3JldCI") {
			t.Fatalf("/encode answer holds the plaintext: %s", sealed)
		}
		opened := post("/decode", sealed)
		if !strings.Contains(opened, "InNlY3JldCI=") {
			t.Errorf("/decode answer %s lacks the original data", opened)
		}
	})

	// The container's root filesystem is read-only: nothing may be written
	// to the working directory (no development key file, no cache).
	if entries, err := os.ReadDir(workDir); err != nil || len(entries) > 0 {
		t.Errorf("codec-server wrote to its working directory: %v %v", entries, err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// poll calls check until it succeeds, failing with log after 30 seconds.
func poll(t *testing.T, what string, check func() error, log *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v\n%s", what, err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
