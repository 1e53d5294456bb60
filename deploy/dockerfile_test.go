package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/envelopecodec/envelope/deploy/internal/serverflags"
)

// parseDockerfile parses deploy/Dockerfile with BuildKit's own parser, so
// a syntax error or an unknown flag fails here as it would in docker build.
func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile warning line %d: %s", w.Location.Start.Line, w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("got %d stages, want a builder and a runtime stage", len(stages))
	}
	return stages
}

func commands[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	build := stages[0]

	t.Run("runtime base has no shell and no package manager", func(t *testing.T) {
		if final.BaseName != "scratch" && !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") {
			t.Errorf("runtime base %q, want scratch or gcr.io/distroless/static*", final.BaseName)
		}
		if runs := commands[*instructions.RunCommand](final); len(runs) > 0 {
			t.Errorf("runtime stage has %d RUN instructions; the image has no shell", len(runs))
		}
	})

	t.Run("runtime user is numeric and not root", func(t *testing.T) {
		users := commands[*instructions.UserCommand](final)
		if len(users) == 0 {
			t.Fatal("runtime stage sets no USER")
		}
		u := users[len(users)-1].User
		uid, _, _ := strings.Cut(u, ":")
		if uid == "" || uid == "0" || uid == "root" || strings.Trim(uid, "0123456789") != "" {
			t.Errorf("USER %q, want a numeric non-root uid (Kubernetes runAsNonRoot needs a number)", u)
		}
	})

	t.Run("health check runs the binary itself in exec form", func(t *testing.T) {
		hcs := commands[*instructions.HealthCheckCommand](final)
		if len(hcs) != 1 {
			t.Fatalf("got %d HEALTHCHECK instructions, want 1", len(hcs))
		}
		test := hcs[0].Health.Test
		want := append([]string{"CMD"}, serverflags.HealthCheck...)
		if !slices.Equal(test, want) {
			t.Errorf("HEALTHCHECK %q, want %q", test, want)
		}
		if hcs[0].Health.Interval <= 0 || hcs[0].Health.Timeout <= 0 {
			t.Errorf("HEALTHCHECK interval %v timeout %v, want both set", hcs[0].Health.Interval, hcs[0].Health.Timeout)
		}
	})

	t.Run("entrypoint is the binary in exec form", func(t *testing.T) {
		eps := commands[*instructions.EntrypointCommand](final)
		if len(eps) != 1 {
			t.Fatalf("got %d ENTRYPOINT instructions, want 1", len(eps))
		}
		if eps[0].PrependShell || !slices.Equal(eps[0].CmdLine, []string{serverflags.Binary}) {
			t.Errorf("ENTRYPOINT %q (shell form %v), want exec form [%q]", eps[0].CmdLine, eps[0].PrependShell, serverflags.Binary)
		}
	})

	t.Run("listens on all interfaces on the exposed port", func(t *testing.T) {
		var listen string
		for _, e := range commands[*instructions.EnvCommand](final) {
			for _, kv := range e.Env {
				if kv.Key == serverflags.Env("listen") {
					listen = kv.Value
				}
			}
		}
		if listen != serverflags.ContainerListen {
			t.Errorf("%s=%q, want %q", serverflags.Env("listen"), listen, serverflags.ContainerListen)
		}
		var ports []string
		for _, e := range commands[*instructions.ExposeCommand](final) {
			ports = append(ports, e.Ports...)
		}
		if !slices.Equal(ports, []string{"8081"}) {
			t.Errorf("EXPOSE %q, want [8081]", ports)
		}
	})

	t.Run("builder makes a static binary that the runtime stage copies", func(t *testing.T) {
		if !strings.HasPrefix(build.BaseName, "golang:") {
			t.Errorf("builder base %q, want golang:*", build.BaseName)
		}
		cgo := false
		for _, e := range commands[*instructions.EnvCommand](build) {
			for _, kv := range e.Env {
				if kv.Key == "CGO_ENABLED" && kv.Value == "0" {
					cgo = true
				}
			}
		}
		if !cgo {
			t.Error("builder does not set CGO_ENABLED=0")
		}
		var out string
		for _, r := range commands[*instructions.RunCommand](build) {
			line := strings.Join(r.CmdLine, " ")
			if !strings.Contains(line, "go build") {
				continue
			}
			if !strings.HasSuffix(line, "./cmd/codec-server") {
				t.Errorf("go build line %q does not build ./cmd/codec-server", line)
			}
			f := strings.Fields(line)
			if i := slices.Index(f, "-o"); i >= 0 && i+1 < len(f) {
				out = f[i+1]
			}
		}
		if out == "" {
			t.Fatal("no `go build -o OUT ./cmd/codec-server` in the builder")
		}
		copies := commands[*instructions.CopyCommand](final)
		if len(copies) != 1 {
			t.Fatalf("runtime stage has %d COPY instructions, want 1 (the binary)", len(copies))
		}
		c := copies[0]
		if c.From != build.Name || !slices.Equal(c.SourcePaths, []string{out}) || c.DestPath != serverflags.Binary {
			t.Errorf("COPY --from=%s %q %s, want --from=%s [%s] %s", c.From, c.SourcePaths, c.DestPath, build.Name, out, serverflags.Binary)
		}
	})
}

// TestDockerfileBuildIsStatic runs the builder stage's `go build` line on
// this machine, with the stage's environment, and checks that the result
// is a static executable: distroless/static has no C library.
func TestDockerfileBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles codec-server without cgo")
	}
	stages := parseDockerfile(t)
	build := stages[0]
	env := append(os.Environ(), "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH)
	for _, e := range commands[*instructions.EnvCommand](build) {
		for _, kv := range e.Env {
			env = append(env, kv.Key+"="+kv.Value)
		}
	}
	var line string
	for _, r := range commands[*instructions.RunCommand](build) {
		if l := strings.Join(r.CmdLine, " "); strings.Contains(l, "go build") {
			line = l
		}
	}
	f := strings.Fields(line)
	i := slices.Index(f, "-o")
	if i < 0 || i+1 >= len(f) {
		t.Fatalf("no -o in %q", line)
	}
	out := filepath.Join(t.TempDir(), "codec-server")
	line = strings.Replace(line, "-o "+f[i+1], "-o "+out, 1)

	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = serverflags.RepoRoot(t)
	cmd.Env = env
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, msg)
	}
	bin, err := elf.Open(out)
	if err != nil {
		t.Skipf("not an ELF platform: %v", err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary needs a dynamic loader")
		}
	}
	if libs, _ := bin.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %q", libs)
	}
	if help, err := exec.Command(out, "--help").CombinedOutput(); err != nil || !bytes.Contains(help, []byte("healthcheck")) {
		t.Errorf("%s --help: %v\n%s", out, err, help)
	}
}

// TestDockerignore checks the build context filter: development keys and
// built tools stay out, the Go sources go in. The context is the
// repository root, one level up.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	f, err := os.Open("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}

	excluded := []string{".git/config", ".data/dev-keys.json", "bin/temporal", "bin/vault", "artifacts/x", "deploy/go.mod", "keyring/testdata/keys.json", "tls/server.key"}
	// Every entry of the repository's .gitignore is local state, never source.
	if g, err := os.Open(filepath.Join("..", ".gitignore")); err == nil {
		s := bufio.NewScanner(g)
		for s.Scan() {
			line := strings.TrimSpace(s.Text())
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
				continue
			}
			p := strings.Trim(line, "/")
			if strings.HasPrefix(p, "*") {
				p = "sub/x" + strings.TrimPrefix(p, "*")
			} else {
				p += "/x"
			}
			excluded = append(excluded, p)
		}
		g.Close()
	}
	included := []string{"go.mod", "go.sum", "cmd/codec-server/main.go", "codec/codec.go", "codecserver/server.go", "keyring/file.go", "keyring/vault/vault.go"}

	for _, p := range excluded {
		if m, err := pm.MatchesOrParentMatches(p); err != nil || !m {
			t.Errorf("%s is in the build context, want it excluded (err %v)", p, err)
		}
	}
	for _, p := range included {
		if m, err := pm.MatchesOrParentMatches(p); err != nil || m {
			t.Errorf("%s is excluded from the build context, want it included (err %v)", p, err)
		}
	}
}
