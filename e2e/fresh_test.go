package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/testenv"
)

// repoFiles lists the repository's files as a clone would have them: the
// tracked ones and the new ones git does not ignore, relative to root.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f == "" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(root, f)); err != nil {
			continue // deleted in the work tree, not committed yet
		}
		files = append(files, f)
	}
	return files
}

// copyRepo copies the repository's files into dst, keeping their modes.
func copyRepo(t *testing.T, root, dst string) {
	t.Helper()
	for _, f := range repoFiles(t, root) {
		src := filepath.Join(root, f)
		fi, err := os.Lstat(src)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, to); err != nil {
				t.Fatal(err)
			}
			continue
		}
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
		if err != nil {
			in.Close()
			t.Fatal(err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestRepoStandsAlone: no tracked file names a folder beside the clone
// (the shared folder of the machine the project was written on) or the folder
// the clone lives in, so a user's clone needs nothing outside itself.
func TestRepoStandsAlone(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	needles := [][]byte{
		[]byte(".." + "/shared"),
		[]byte(filepath.Dir(root) + "/"),
	}
	for _, f := range repoFiles(t, root) {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // a symlink to a folder, say
		}
		for _, n := range needles {
			if i := bytes.Index(b, n); i >= 0 {
				line := 1 + bytes.Count(b[:i], []byte("\n"))
				t.Errorf("%s:%d names %q, which a user's clone does not have", f, line, n)
			}
		}
	}
}

// TestDemoFreshClone is the new user's first run: a copy of the repository
// in an empty folder with nothing beside it, the temporal CLI on PATH, no
// vault anywhere, and apt-get, sudo and chromium replaced by stubs that
// fail. `DEMO_EXIT_AFTER_START=1 make demo` must succeed, print the
// --codec-endpoint command, take temporal from PATH (not build its own),
// and call none of the stubs.
func TestDemoFreshClone(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	temporal, err := filepath.EvalSymlinks(testenv.Binary(t, "temporal"))
	if err != nil {
		t.Fatal(err)
	}
	goPath, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go on PATH: %v", err)
	}
	if goPath, err = filepath.EvalSymlinks(goPath); err != nil {
		t.Fatal(err)
	}
	goBin := filepath.Dir(goPath)

	base := t.TempDir()
	clone := filepath.Join(base, "envelope") // nothing beside it
	copyRepo(t, root, clone)

	stubs := filepath.Join(t.TempDir(), "stubs")
	calls := filepath.Join(t.TempDir(), "stub-calls.log")
	if err := os.MkdirAll(stubs, 0o755); err != nil {
		t.Fatal(err)
	}
	stub := fmt.Sprintf("#!/bin/sh\necho \"$0 $*\" >>%q\necho \"stub: $0 must not be called by make demo\" >&2\nexit 1\n", calls)
	for _, n := range []string{"apt-get", "apt", "sudo", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if err := os.WriteFile(filepath.Join(stubs, n), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(temporal, filepath.Join(stubs, "temporal")); err != nil {
		t.Fatal(err)
	}
	path := strings.Join([]string{stubs, goBin, "/usr/bin", "/bin"}, string(os.PathListSeparator))
	for _, dir := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(dir, "vault")); err == nil {
			t.Fatalf("%s/vault exists; this test needs a PATH without vault", dir)
		}
	}

	var env []string
	for _, kv := range cleanEnv(os.Environ()) {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "DEMO_") || strings.HasPrefix(kv, "MAKE") || strings.HasPrefix(kv, "CHROMIUM=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PATH="+path, "DEMO_EXIT_AFTER_START=1", "DEMO_LOG_DIR="+t.TempDir())
	for _, k := range []string{"DEMO_TEMPORAL_PORT", "DEMO_UI_PORT", "DEMO_CODEC_PORT"} {
		env = append(env, fmt.Sprintf("%s=%d", k, testenv.FreePort(t)))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "demo")
	cmd.Dir = clone
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start).Round(time.Second)
	if err != nil {
		t.Fatalf("make demo in a fresh clone: %v (after %s)\n%s", err, took, out)
	}
	t.Logf("make demo in a fresh clone with temporal on PATH took %s", took)
	text := string(out)
	if !strings.Contains(text, "--codec-endpoint") {
		t.Errorf("make demo printed no --codec-endpoint command:\n%s", text)
	}
	onPath := filepath.Join(stubs, "temporal")
	if want := "temporal: " + onPath + " from PATH"; !strings.Contains(text, want) {
		t.Errorf("make demo did not say it took temporal from PATH (%q):\n%s", want, text)
	}
	if strings.Contains(text, "building the Temporal CLI") {
		t.Errorf("make demo built a temporal CLI of its own:\n%s", text)
	}
	if got, err := os.Readlink(filepath.Join(clone, "bin", "temporal")); err != nil || got != onPath {
		t.Errorf("bin/temporal in the clone: link to %q (%v), want a link to %s", got, err, onPath)
	}
	if _, err := os.Lstat(filepath.Join(clone, "bin", "vault")); err == nil {
		t.Errorf("make demo made bin/vault; the demo does not use Vault")
	}
	if b, err := os.ReadFile(calls); err == nil && len(b) > 0 {
		t.Errorf("make demo called stubs it must not need:\n%s", b)
	}
	if strings.Contains(text, "make: ***") {
		t.Errorf("make reported an error:\n%s", text)
	}
}

// TestToolsTakesPathFirst runs scripts/tools.sh (alone, in an empty
// folder) against stub programs on PATH: a good temporal and a local-kms
// are linked into bin/ and named; a temporal without `server start-dev` and a too-old
// vault are refused with a message naming the version needed, and nothing
// is built.
func TestToolsTakesPathFirst(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	script, err := os.ReadFile(filepath.Join(root, "scripts", "tools.sh"))
	if err != nil {
		t.Fatal(err)
	}
	goodTemporal := `#!/bin/sh
case "$*" in
  --version) echo "temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)" ;;
  "server start-dev --help") echo "  --ui-codec-endpoint string" ;;
  "workflow show --help") echo "  --disable-config-file" ;;
  *) exit 1 ;;
esac
`
	oldTemporal := `#!/bin/sh
case "$*" in
  --version) echo "temporal version 0.9.0" ;;
  *) echo "unknown command" >&2; exit 1 ;;
esac
`
	oldVault := "#!/bin/sh\necho 'Vault v1.2.0 (abc)'\n"
	tests := []struct {
		name     string
		tool     string
		stubs    map[string]string
		wantCode int
		want     string
		wantLink bool
	}{
		{"a temporal on PATH with server start-dev is linked into bin/", "temporal", map[string]string{"temporal": goodTemporal}, 0, "from PATH (temporal version 1.5.1", true},
		{"a temporal on PATH without server start-dev is refused, naming the version needed", "temporal", map[string]string{"temporal": oldTemporal}, 1, "v1.5.1 or newer", false},
		{"a vault on PATH that is too old is refused, naming the version needed", "vault", map[string]string{"vault": oldVault}, 1, "v1.15.0 or newer", false},
		{"a local-kms on PATH is linked into bin/ instead of being built", "local-kms", map[string]string{"local-kms": "#!/bin/sh\nexit 0\n"}, 0, "from PATH", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repo := t.TempDir()
			if err := os.MkdirAll(filepath.Join(repo, "scripts"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(repo, "scripts", "tools.sh"), script, 0o755); err != nil {
				t.Fatal(err)
			}
			stubs := t.TempDir()
			for n, body := range tt.stubs {
				if err := os.WriteFile(filepath.Join(stubs, n), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// go is replaced by a failing stub: nothing may be built.
			if err := os.WriteFile(filepath.Join(stubs, "go"), []byte("#!/bin/sh\necho 'stub go: must not build' >&2\nexit 1\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", "scripts/tools.sh", tt.tool)
			cmd.Dir = repo
			cmd.Env = []string{"PATH=" + stubs + ":/usr/bin:/bin", "HOME=" + t.TempDir()}
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s", code, tt.wantCode, tt.want, out)
			}
			if strings.Contains(string(out), "stub go") {
				t.Errorf("tools.sh tried to build:\n%s", out)
			}
			link, err := os.Readlink(filepath.Join(repo, "bin", tt.tool))
			if tt.wantLink && (err != nil || link != filepath.Join(stubs, tt.tool)) {
				t.Errorf("bin/%s links to %q (%v), want %s", tt.tool, link, err, filepath.Join(stubs, tt.tool))
			}
			if !tt.wantLink && err == nil {
				t.Errorf("bin/%s was linked to %s though it was refused", tt.tool, link)
			}
		})
	}
}
