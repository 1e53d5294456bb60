package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
)

// chromiumNames are the executables tried, in order, when CHROMIUM is not
// set: Debian's package installs `chromium`.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// ChromiumPath returns the headless browser to use: $CHROMIUM, else the
// first of chromium, chromium-browser, google-chrome on PATH. It fails the
// test when there is none: run `make tools`, which installs Debian's
// chromium.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatalf("testenv: no Chromium found (tried %s); run `make tools` to install Debian's chromium", strings.Join(chromiumNames, ", "))
	return ""
}

// Browser is a headless Chromium driven through the DevTools protocol.
type Browser struct {
	// Ctx is a chromedp context for the browser's first tab: pass it (or a
	// context derived from it with a timeout) to chromedp.Run.
	Ctx context.Context

	mu  sync.Mutex
	out strings.Builder
}

// Output returns what the browser process printed so far.
func (b *Browser) Output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

func (b *Browser) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

// StartChromium starts headless Chromium with a fresh profile in a temporary
// folder, the flags that make it run in containers and CI (no sandbox, no
// GPU, no QUIC, no background traffic) and a 1440x1000 window. The browser
// and every process it started are stopped when the test ends.
func StartChromium(t testing.TB) *Browser {
	t.Helper()
	return StartChromiumWithFlags(t, nil)
}

// StartChromiumWithFlags is [StartChromium] with extra command-line flags
// (name without the leading "--" mapped to a value, or to true for a bare
// flag), e.g. "ignore-certificate-errors-spki-list" to trust a test
// server's certificate.
func StartChromiumWithFlags(t testing.TB, flags map[string]any) *Browser {
	t.Helper()
	b := &Browser{}
	var pgid int
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
		chromedp.CombinedOutput(b),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			if cmd.SysProcAttr == nil {
				cmd.SysProcAttr = &syscall.SysProcAttr{}
			}
			cmd.SysProcAttr.Setpgid = true
			cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		}),
	}
	for name, v := range flags {
		opts = append(opts, chromedp.Flag(name, v))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	// Start the browser now, so a broken installation fails here.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("testenv: start chromium: %v\n%s", err, b.Output())
	}
	if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil {
		if p := c.Browser.Process(); p != nil {
			pgid = p.Pid
		}
	}
	b.Ctx = ctx
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // kills the browser and waits for it
		if pgid > 0 {
			_ = syscall.Kill(-pgid, syscall.SIGKILL) // renderers and helpers
		}
		if t.Failed() {
			t.Logf("testenv: chromium output:\n%s", tail(b.Output(), 100))
		}
	})
	return b
}

// ArtifactPath returns artifacts/<name> in the repository (git-ignored),
// creating the folder. Tests save screenshots there.
func ArtifactPath(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}
