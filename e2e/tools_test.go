package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/internal/testenv"
)

// fakeTool is a shell script answering the commands scripts/tools.sh asks a
// temporal or vault on PATH: --version, the help of start-dev and workflow
// show (temporal), version (vault).
func fakeTool(t *testing.T, path, version string, current bool) {
	t.Helper()
	flags := ""
	if current {
		flags = "--ui-codec-endpoint --disable-config-file"
	}
	script := "#!/bin/sh\ncase \"$*\" in\n" +
		"  --version) echo 'temporal version " + version + "' ;;\n" +
		"  version) echo 'Vault v" + version + " (fake)' ;;\n" +
		"  *--help*) echo 'Flags: " + flags + "' ;;\n" +
		"esac\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// toolsCopy copies scripts/ of the repository into a fresh folder and
// returns that folder.
func toolsCopy(t *testing.T) string {
	t.Helper()
	root := testenv.RepoRoot(t)
	dir := filepath.Join(t.TempDir(), "envelope")
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tools.sh", "build-vault.sh"} {
		b, err := os.ReadFile(filepath.Join(root, "scripts", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "scripts", f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runTools runs scripts/tools.sh through script (which may be a path
// through a symbolic link) with PATH set to path and the Go module proxy
// off, so nothing is downloaded or built for long.
func runTools(t *testing.T, script, path string, tools ...string) (string, error) {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "PWD=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+path, "GOPROXY=off", "GOFLAGS=-mod=mod")
	cmd := exec.Command(script, tools...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestToolsThroughSymlinkedClone: a clone reached through a symbolic link
// (macOS's /tmp, a linked home folder) with its own bin/ on PATH keeps the
// temporal it built. tools.sh compared the physical path of the program it
// found with the logical path of the clone, took bin/temporal for a tool
// from elsewhere on PATH, and failed linking it to itself.
func TestToolsThroughSymlinkedClone(t *testing.T) {
	t.Parallel()
	dir := toolsCopy(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fakeTool(t, filepath.Join(bin, "temporal"), "1.5.1", true) // "built here"
	path := strings.Join([]string{filepath.Join(link, "bin"), "/usr/bin", "/bin", filepath.Dir(goBinary(t))}, ":")
	cmd := filepath.Join(link, "scripts", "tools.sh")
	out, err := runTools(t, cmd, path, "temporal")
	if err != nil || !strings.Contains(out, "temporal: bin/temporal, built here") {
		t.Fatalf("tools.sh temporal through a linked clone with bin/ on PATH: %v\n%s", err, out)
	}
	fi, err := os.Lstat(filepath.Join(bin, "temporal"))
	if err != nil || fi.Mode()&os.ModeSymlink != 0 {
		t.Fatalf("bin/temporal is no longer the program built here: %v, %v", fi, err)
	}
}

// TestToolsKeepALinkWithBinOnPath: with the clone's bin/ on PATH and
// bin/temporal a link (made earlier) to a temporal elsewhere, tools.sh
// keeps the link. It used to take bin/temporal for a program on PATH,
// link it to itself, and leave the next run with a broken bin/temporal.
func TestToolsKeepALinkWithBinOnPath(t *testing.T) {
	t.Parallel()
	dir := toolsCopy(t)
	elsewhere := filepath.Join(t.TempDir(), "temporal")
	fakeTool(t, elsewhere, "1.5.1", true)
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(bin, "temporal")); err != nil {
		t.Fatal(err)
	}
	path := strings.Join([]string{bin, "/usr/bin", "/bin", filepath.Dir(goBinary(t))}, ":")
	for run := 1; run <= 2; run++ {
		out, err := runTools(t, filepath.Join(dir, "scripts", "tools.sh"), path, "temporal")
		if err != nil || !strings.Contains(out, "linked earlier to "+elsewhere) {
			t.Fatalf("run %d: tools.sh temporal with bin/ on PATH: %v\n%s", run, err, out)
		}
		if got, err := os.Readlink(filepath.Join(bin, "temporal")); err != nil || got != elsewhere {
			t.Fatalf("run %d: bin/temporal links to %q (%v), want %s", run, got, err, elsewhere)
		}
	}
}

// goBinary returns the go command the tests run with.
func goBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
