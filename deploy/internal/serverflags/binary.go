package serverflags

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RepoRoot returns the root of the envelope repository (the folder holding
// the main go.mod), found by walking up from the working directory.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/envelopecodec/envelope\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("serverflags: no envelope repository above the working directory")
		}
		dir = parent
	}
}

// BuildBinary builds cmd/codec-server into a temporary folder and returns
// its path. It builds as `make build` does, so after that the Go build
// cache leaves only the link to do. (The Dockerfile's static build is
// checked by deploy's TestDockerfileBuildIsStatic.)
func BuildBinary(tb testing.TB) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "codec-server")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/codec-server")
	cmd.Dir = RepoRoot(tb)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build codec-server: %v\n%s", err, msg)
	}
	return out
}
