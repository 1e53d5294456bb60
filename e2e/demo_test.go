package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/testenv"
)

// TestDemo runs scripts/demo.sh (what `make demo` runs after building) on
// free ports, follows the commands it prints, then presses Ctrl-C and
// checks that it stopped everything it started.
func TestDemo(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	testenv.Binary(t, "temporal")
	// The script runs bin/codec-server as it is: it must be the build of
	// these sources, not yesterday's.
	testenv.BuiltBinary(t, "codec-server")
	ports := map[string]int{}
	for _, k := range []string{"DEMO_TEMPORAL_PORT", "DEMO_UI_PORT", "DEMO_CODEC_PORT"} {
		ports[k] = testenv.FreePort(t)
	}
	cmd := exec.Command("bash", "scripts/demo.sh")
	cmd.Dir = root
	cmd.Env = cleanEnv(os.Environ())
	for k, p := range ports {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", k, p))
	}
	cmd.Env = append(cmd.Env, "DEMO_LOG_DIR="+t.TempDir())
	demo := testenv.StartProcess(t, "demo", cmd)
	ctx := context.Background()
	if err := demo.WaitOutput(ctx, "press Ctrl-C", 5*time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, demo.Output())
	}
	out := demo.Output()

	// The printed Web UI page answers.
	ui := printedLine(t, out, "/namespaces/default/workflows/")
	resp, err := http.Get(ui)
	if err != nil {
		t.Fatalf("GET %s: %v", ui, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", ui, resp.Status)
	}

	// The starter's default customer, as the demo shows it.
	s := secrets{Name: "Ada Lovelace", Email: "ada.lovelace@example.com", Card: "4111 1111 1111 1111",
		Address: "12 St James's Square, London", Approver: "grace@example.com", Note: "identity checked by phone"}
	decodedCmd := printedLine(t, out, "--codec-endpoint")
	rawCmd := strings.TrimSpace(strings.Split(decodedCmd, "--codec-endpoint")[0])
	if printedLine(t, out, "workflow show") != rawCmd {
		t.Errorf("the demo's first command is not the decoded one without the codec:\n%s", out)
	}
	// The printed commands as printed: the raw history shows no secret,
	// the decoded one shows each as a line of its own.
	assertNotShown(t, "the printed raw history command", runPrinted(t, root, rawCmd), s.all()...)
	assertLines(t, "the printed decoded history command", runPrinted(t, root, decodedCmd), s.detailedLines()...)
	// What Temporal stores, every payload of it: the raw command in JSON.
	assertNoPlaintext(t, "the printed raw history command with -o json", runPrinted(t, root, rawCmd+" -o json"), s, 5)

	// The printed search finds the workflow by e-mail, as a shell runs it.
	wid := strings.Split(strings.SplitN(ui, "/workflows/", 2)[1], "/")[0]
	search := exec.Command("bash", "-c", printedLine(t, out, "blind-index"))
	search.Dir, search.Env = root, cleanEnv(os.Environ())
	if listed, err := search.CombinedOutput(); err != nil || !strings.Contains(string(listed), wid) {
		t.Errorf("the printed search (%s) does not list %s: %v\n%s", printedLine(t, out, "blind-index"), wid, err, listed)
	}

	// Ctrl-C: the terminal sends SIGINT to the whole foreground group.
	if err := syscall.Kill(-demo.Pid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// A deliberate stop is not an error: exit status 0, so make prints no
	// "Error 130" after it.
	if err := demo.Wait(wctx); err != nil {
		t.Fatalf("demo after Ctrl-C: %v, want exit status 0\n%s", err, demo.Output())
	}
	if !strings.Contains(demo.Output(), "stopping") || !strings.Contains(demo.Output(), "stopped everything it started") {
		t.Errorf("demo did not say that it stopped everything:\n%s", demo.Output())
	}
	// Nothing it started is left: its process group is empty and the ports
	// are free.
	if err := syscall.Kill(-demo.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("processes of the demo are still running after Ctrl-C (kill -0 -%d: %v)", demo.Pid(), err)
	}
	for k, p := range ports {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second); err == nil {
			c.Close()
			t.Errorf("%s %d still accepts connections after Ctrl-C", k, p)
		}
	}
}

// printedLine returns the first line of out containing substr, trimmed.
func printedLine(t *testing.T, out, substr string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, substr) {
			return strings.TrimSpace(l)
		}
	}
	t.Fatalf("demo printed no line with %q:\n%s", substr, out)
	return ""
}

// runPrinted runs a command line the demo printed (plain words, no quoting)
// from the repository root and returns its stdout.
func runPrinted(t *testing.T, root, line string) string {
	t.Helper()
	f := strings.Fields(line)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, f[0], f[1:]...)
	cmd.Dir = root
	cmd.Env = cleanEnv(os.Environ())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, stderr.String())
	}
	return string(out)
}
