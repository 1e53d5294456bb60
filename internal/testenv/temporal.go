package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// TemporalOptions configures [StartTemporal]. All fields are optional.
type TemporalOptions struct {
	// UI starts the Web UI; by default the dev server runs --headless.
	UI bool
	// UICodecEndpoint is passed as --ui-codec-endpoint: the codec server the
	// Web UI calls from the browser. Implies UI.
	UICodecEndpoint string
	// UIPort is the Web UI's port; by default a free one. Choose it first
	// when another server must know the UI's origin (the codec server's
	// CORS origins).
	UIPort int
	// Namespaces are created at launch besides "default".
	Namespaces []string
	// SearchAttributes are registered at launch, each "Name=Type" (e.g.
	// "CustomerEmailIdx=Keyword"), passed as --search-attribute.
	SearchAttributes []string
	// DBFile keeps the server's state in this SQLite file; by default it is
	// in memory and lost when the server stops.
	DBFile string
	// Env holds extra environment variables (KEY=VALUE) for the server, for
	// example the UI's TEMPORAL_CODEC_* settings.
	Env []string
	// StartTimeout bounds the wait for the server to be ready. Default: 90s.
	StartTimeout time.Duration
}

// Temporal is a running `temporal server start-dev`.
type Temporal struct {
	// Address is the front-end gRPC address, host:port.
	Address string
	// UIURL is the Web UI's base URL (http://127.0.0.1:port), empty when
	// headless.
	UIURL string
	// Namespace is "default".
	Namespace string

	cli  string
	proc *Process
}

// StartTemporal runs the Temporal CLI's dev server (bin/temporal server
// start-dev) on free loopback ports, waits until the front end answers and
// the default namespace exists (and the UI serves, when started), and stops
// it when the test ends.
func StartTemporal(t testing.TB, opts TemporalOptions) *Temporal {
	t.Helper()
	bin := Binary(t, "temporal")
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 90 * time.Second
	}
	if opts.UICodecEndpoint != "" {
		opts.UI = true
	}
	var err error
	for try := 0; try < 3; try++ {
		var tc *Temporal
		if tc, err = startTemporal(t, bin, opts); err == nil {
			return tc
		}
		// A port FreePort chose was taken by someone else in between.
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("testenv: %v", err)
	return nil
}

func startTemporal(t testing.TB, bin string, opts TemporalOptions) (*Temporal, error) {
	t.Helper()
	port := FreePort(t)
	args := []string{"server", "start-dev",
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--http-port", strconv.Itoa(FreePort(t)),
		"--metrics-port", strconv.Itoa(FreePort(t)),
		"--log-level", "warn",
		"--disable-config-file",
	}
	tc := &Temporal{Address: fmt.Sprintf("127.0.0.1:%d", port), Namespace: "default", cli: bin}
	if opts.UI {
		uiPort := opts.UIPort
		if uiPort == 0 {
			uiPort = FreePort(t)
		}
		args = append(args, "--ui-ip", "127.0.0.1", "--ui-port", strconv.Itoa(uiPort))
		tc.UIURL = fmt.Sprintf("http://127.0.0.1:%d", uiPort)
		if opts.UICodecEndpoint != "" {
			args = append(args, "--ui-codec-endpoint", opts.UICodecEndpoint)
		}
	} else {
		args = append(args, "--headless")
	}
	if opts.DBFile != "" {
		args = append(args, "--db-filename", opts.DBFile)
	}
	for _, ns := range opts.Namespaces {
		args = append(args, "--namespace", ns)
	}
	for _, sa := range opts.SearchAttributes {
		args = append(args, "--search-attribute", sa)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanTemporalEnv(os.Environ()), opts.Env...)
	tc.proc = StartProcess(t, "temporal", cmd)

	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()
	if err := tc.waitReady(ctx, append([]string{"default"}, opts.Namespaces...)); err != nil {
		tc.proc.Stop()
		return nil, fmt.Errorf("temporal dev server not ready: %v\n%s", err, tc.proc.Output())
	}
	if opts.UI {
		if err := WaitHTTP(ctx, tc.UIURL+"/", opts.StartTimeout); err != nil {
			tc.proc.Stop()
			return nil, fmt.Errorf("temporal Web UI not ready: %v\n%s", err, tc.proc.Output())
		}
	}
	if tc.proc.Exited() {
		// Another server answered on the port this one could not bind.
		return nil, fmt.Errorf("temporal dev server exited: %v\n%s", tc.proc.Err(), tc.proc.Output())
	}
	return tc, nil
}

// waitReady polls until the front end is serving and every namespace is
// registered.
func (tc *Temporal) waitReady(ctx context.Context, namespaces []string) error {
	var last error
	for {
		if tc.proc.Exited() {
			return fmt.Errorf("server exited: %v", tc.proc.Err())
		}
		last = func() error {
			c, err := client.Dial(client.Options{HostPort: tc.Address, Logger: quietLogger{}})
			if err != nil {
				return err
			}
			defer c.Close()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := c.CheckHealth(cctx, &client.CheckHealthRequest{}); err != nil {
				return err
			}
			for _, ns := range namespaces {
				if _, err := c.WorkflowService().DescribeNamespace(cctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns}); err != nil {
					return fmt.Errorf("namespace %s: %w", ns, err)
				}
			}
			return nil
		}()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last error: %v", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Client dials the dev server with opts (HostPort and Namespace filled in
// when empty) and closes the client when the test ends.
func (tc *Temporal) Client(t testing.TB, opts client.Options) client.Client {
	t.Helper()
	if opts.HostPort == "" {
		opts.HostPort = tc.Address
	}
	if opts.Namespace == "" {
		opts.Namespace = tc.Namespace
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger{}
	}
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatalf("testenv: dial temporal at %s: %v", tc.Address, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Output returns what the dev server printed so far.
func (tc *Temporal) Output() string { return tc.proc.Output() }

// CLIResult is the outcome of one temporal CLI command.
type CLIResult struct {
	Args     []string
	Stdout   string
	Stderr   string
	Err      error // nil when the command exited 0
	Duration time.Duration
}

func (r CLIResult) String() string {
	return fmt.Sprintf("temporal %s: err=%v (%s)\nstdout:\n%s\nstderr:\n%s",
		strings.Join(redactArgs(r.Args), " "), r.Err, r.Duration.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// CLI runs `bin/temporal args...` against this dev server: the address comes
// from TEMPORAL_ADDRESS, any other TEMPORAL_* variable of the test process
// and the user's config file are ignored. It does not fail the test on a
// non-zero exit; check CLIResult.Err. The command is killed when ctx ends.
func (tc *Temporal) CLI(ctx context.Context, args ...string) CLIResult {
	start := time.Now()
	full := append(append([]string(nil), args...), "--disable-config-file")
	cmd := exec.CommandContext(ctx, tc.cli, full...)
	cmd.Env = append(cleanTemporalEnv(os.Environ()), "TEMPORAL_ADDRESS="+tc.Address)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return CLIResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Err: err, Duration: time.Since(start)}
}

// redactArgs hides the value of --codec-auth, which holds a token.
func redactArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == "--codec-auth" && i+1 < len(out) {
			out[i+1] = "[REDACTED]"
		}
		if strings.HasPrefix(out[i], "--codec-auth=") {
			out[i] = "--codec-auth=[REDACTED]"
		}
	}
	return out
}

// cleanTemporalEnv drops TEMPORAL_* variables, so that a developer's own
// settings never point a test at another server.
func cleanTemporalEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "TEMPORAL_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Process is a child process started by a test, in its own process group,
// with its output captured. It is stopped when the test ends.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  string // file holding the output

	mu  sync.Mutex
	out bytes.Buffer

	done chan struct{}
	err  error
}

// StartProcess starts cmd in its own process group, captures its stdout and
// stderr (also written to name.log in a temporary folder) and, when the test
// ends, sends SIGTERM to the group, then SIGKILL after 15 seconds. When the
// test failed, the output is logged.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{name: name, cmd: cmd, done: make(chan struct{}), log: filepath.Join(t.TempDir(), name+".log")}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	w := io.MultiWriter(f, &lockedWriter{mu: &p.mu, w: &p.out})
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("testenv: start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("testenv: output of %s (%s):\n%s", name, strings.Join(redactArgs(cmd.Args), " "), tail(p.Output(), 200))
		}
	})
	return p
}

// Stop sends SIGTERM to the process group and waits for the process to
// exit, sending SIGKILL to the group after 15 seconds. Processes of the
// group still alive after the leader exits are killed too. It is safe to
// call more than once.
func (p *Process) Stop() {
	pgid := p.cmd.Process.Pid
	if !p.Exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Children that outlived the leader.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Signal sends sig to the process (not its group).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the process to exit or ctx to end.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns the process's exit error once it has exited.
func (p *Process) Err() error {
	if !p.Exited() {
		return errors.New("still running")
	}
	return p.err
}

// Pid returns the process ID (also its process group ID).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns everything the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// LogFile returns the file the output is also written to.
func (p *Process) LogFile() string { return p.log }

// WaitOutput polls the output until it contains substr, the process exits
// or the timeout passes.
func (p *Process) WaitOutput(ctx context.Context, substr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if strings.Contains(p.Output(), substr) {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("testenv: %s exited (%v) before printing %q", p.name, p.err, substr)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s did not print %q within %s", p.name, substr, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	return "...\n" + strings.Join(lines[len(lines)-n:], "\n")
}

// quietLogger drops the SDK client's logs.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
