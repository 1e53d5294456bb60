package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestExamplesPrintTheirVersion: every binary answers --version with one
// line naming the module, without connecting to anything.
func TestExamplesPrintTheirVersion(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"worker", "starter"} {
		out, err := exec.Command(exampleBinary(t, name), "--version").Output()
		if err != nil {
			t.Errorf("%s --version: %v", name, err)
			continue
		}
		if s := string(out); !strings.HasPrefix(s, name+" ") || !strings.Contains(s, "github.com/envelopecodec/envelope") || strings.Count(s, "\n") != 1 {
			t.Errorf("%s --version printed %q", name, s)
		}
	}
}
