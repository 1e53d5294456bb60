package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/internal/testenv"
)

// TestDemoSaysWhyAProcessStopped: when a process the demo started stops
// by itself (here a codec server that cannot listen because another one
// holds the port, while that other one answers the health check), the
// demo says which process stopped, its exit status and its last log line,
// instead of only "codec-server stopped; see ...log" and make's Error 1.
// It runs the demo's own process handling (scripts/lib/processes.sh).
func TestDemoSaysWhyAProcessStopped(t *testing.T) {
	t.Parallel()
	logs := t.TempDir()
	script := `set -euo pipefail
LOG_DIR=$1
say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
source scripts/lib/processes.sh
start codec-server sh -c 'echo "codec-server: listen: listen tcp 127.0.0.1:8081: bind: address already in use" >&2; exit 1'
start worker sleep 30
# The health check reaches the other codec server on the port: it passes.
wait_for "the codec server" 10 true
say "running; press Ctrl-C to stop everything"
wait_any
report_exited
`
	cmd := exec.Command("bash", "-c", script, "demo-test", logs)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1:\n%s", err, out)
	}
	want := "demo: codec-server exited with status 1: codec-server: listen: listen tcp 127.0.0.1:8081: bind: address already in use (see " + filepath.Join(logs, "codec-server.log") + ")"
	if !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if !strings.Contains(string(out), "demo: stopping codec-server worker") {
		t.Errorf("the other processes were not stopped:\n%s", out)
	}
}
