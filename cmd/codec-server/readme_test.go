package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeListsEveryFlag keeps the README's flag table complete: every
// flag of the binary appears there with its environment variable.
func TestReadmeListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	fs := cfg.FlagSet(io.Discard)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(string(readme), "| `--"+f.Name+"` |") {
			t.Errorf("README.md has no row for --%s", f.Name)
		}
	})
	if n < 30 {
		t.Fatalf("only %d flags registered; the test is not looking at the real flag set", n)
	}
}
