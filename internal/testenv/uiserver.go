package testenv

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// uiServerDockerConfig is config/docker.yaml of
// github.com/temporalio/ui-server/v2 v2.42.1 (MIT licence), unchanged: the
// template the temporalio/ui container image reads, which takes every
// setting from a TEMPORAL_* environment variable (TEMPORAL_AUTH_ENABLED,
// TEMPORAL_CODEC_ENDPOINT, ...). Running the UI server with it tests the
// same settings operators give the image.
//
//go:embed uiserverconfig/docker.yaml
var uiServerDockerConfig []byte

// UIServerOptions configures [StartUIServer].
type UIServerOptions struct {
	// TemporalAddress is the Temporal front end, host:port. Required.
	TemporalAddress string
	// Port is the UI server's port; by default a free one. Choose it first
	// when another server must know the UI's origin (the codec server's
	// CORS origins, the OIDC client's redirect URI).
	Port int
	// Env holds the UI server's settings as the temporalio/ui image takes
	// them (KEY=VALUE): TEMPORAL_AUTH_*, TEMPORAL_CODEC_*, ...
	// TEMPORAL_ADDRESS and TEMPORAL_UI_PORT are set from the fields above;
	// the test process's own TEMPORAL_* variables are never passed on.
	Env []string
	// StartTimeout bounds the wait for /healthz. Default: 60s.
	StartTimeout time.Duration
}

// UIServer is a running Temporal UI server (bin/ui-server, the
// github.com/temporalio/ui-server/v2 build the temporal CLI embeds).
type UIServer struct {
	// URL is the UI's base URL and origin, http://127.0.0.1:port.
	URL string

	proc *Process
}

// StartUIServer runs bin/ui-server on 127.0.0.1 with the temporalio/ui
// image's configuration template and opts.Env, waits until GET /healthz
// answers 200 and stops it when the test ends. With TEMPORAL_AUTH_ENABLED
// the OIDC provider must be up first: the UI server reads its discovery
// document at start and exits when it cannot.
func StartUIServer(t testing.TB, opts UIServerOptions) *UIServer {
	t.Helper()
	bin := Binary(t, "ui-server")
	if opts.TemporalAddress == "" {
		t.Fatal("testenv: UIServerOptions.TemporalAddress is required")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	root := t.TempDir()
	dir := filepath.Join(root, "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// base.yaml is read first; docker.yaml sets no host, so this keeps the
	// UI server on loopback.
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte("host: 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker.yaml"), uiServerDockerConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	port := opts.Port
	if port == 0 {
		port = FreePort(t)
	}
	cmd := exec.Command(bin, "--root", root, "--config", "config", "--env", "docker", "start")
	cmd.Dir = root
	cmd.Env = append(cleanTemporalEnv(os.Environ()),
		"TEMPORAL_ADDRESS="+opts.TemporalAddress,
		"TEMPORAL_UI_PORT="+strconv.Itoa(port),
	)
	cmd.Env = append(cmd.Env, opts.Env...)
	ui := &UIServer{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	ui.proc = StartProcess(t, "ui-server", cmd)

	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()
	if err := waitStatus(ctx, http.DefaultClient, ui.URL+"/healthz", http.StatusOK, ui.proc); err != nil {
		t.Fatalf("testenv: ui server not ready: %v\n%s", err, ui.proc.Output())
	}
	return ui
}

// Output returns what the UI server printed so far.
func (ui *UIServer) Output() string { return ui.proc.Output() }

// Process returns the UI server's process.
func (ui *UIServer) Process() *Process { return ui.proc }
