package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyconfig"
)

// usageDefault matches a default stated in a usage text, e.g.
// (default "transit") or (default 5s): one word, no spaces.
var usageDefault = regexp.MustCompile(`\(default ([^ ()]+)\)`)

// helpDefault is the default --help shows for f: the flag package's own
// (quoted for string flags, left out for zero values), or the one the usage
// text states for flags whose zero value means a default applied later.
func helpDefault(f *flag.Flag) string {
	if m := usageDefault.FindStringSubmatch(f.Usage); m != nil {
		return m[1]
	}
	switch f.DefValue {
	case "", "0", "false", "0s":
		return ""
	}
	if name, _ := flag.UnquoteUsage(f); name == "string" {
		return strconv.Quote(f.DefValue)
	}
	return f.DefValue
}

// TestReadmeFlagDefaults keeps the README's flag table equal to --help:
// every row names the flag's environment variable and the default --help
// prints.
func TestReadmeFlagDefaults(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := make(map[string][]string)
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) < 4 {
			continue
		}
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		rows[strings.TrimPrefix(cells[0], "--")] = cells
	}
	cfg := DefaultConfig()
	fs := cfg.FlagSet(io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		row, ok := rows[f.Name]
		if !ok {
			return // TestReadmeListsEveryFlag reports it
		}
		if env := keyconfig.EnvName(f.Name); row[1] != env {
			t.Errorf("--%s: README says environment %q, want %q", f.Name, row[1], env)
		}
		if want := helpDefault(f); row[2] != want {
			t.Errorf("--%s: README default %q, --help says %q", f.Name, row[2], want)
		}
	})
}
