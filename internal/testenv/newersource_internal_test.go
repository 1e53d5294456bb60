package testenv

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNewerSourceSkipsNodeModules checks that Go files an npm package
// ships (typescript/node_modules, installed after `make build` by `make
// test`) do not count as sources newer than the codec server, while the
// module's own Go files do.
func TestNewerSourceSkipsNodeModules(t *testing.T) {
	root := t.TempDir()
	built := time.Now().Add(-time.Hour)
	write := func(rel string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("package x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join("typescript", "node_modules", "@temporalio", "core-bridge", "cmd", "main.go"))
	if got := newerSource(root, built); got != "" {
		t.Errorf("newerSource = %q, want none: npm packages' Go files are not the module's", got)
	}
	write(filepath.Join("codec", "codec.go"))
	if got := newerSource(root, built); got != filepath.Join("codec", "codec.go") {
		t.Errorf("newerSource = %q, want codec/codec.go", got)
	}
}
