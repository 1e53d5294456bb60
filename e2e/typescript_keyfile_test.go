package e2e

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
)

// TestTypeScriptKeyFileParserAgreesWithGo runs the Go key file parser and
// the TypeScript one (typescript/src/keyfile.ts) over the shared cases
// (keyring/testdata/keyfile-cases.json) and a few thousand files made from
// them by random edits: both must accept the same files and refuse the
// others with the same first reason (a JSON syntax error's byte offset
// aside).
func TestTypeScriptKeyFileParserAgreesWithGo(t *testing.T) {
	prog := tsProgram(t, "keyfile")
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "keyring", "testdata", "keyfile-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			File string `json:"file"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	for _, c := range doc.Cases {
		files = append(files, []byte(c.File))
	}
	// Edits that reach the parser's corners: JSON punctuation, digits,
	// literals, base64, line breaks, case-folding runes.
	const alphabet = "{}[]\",:0123456789.eE-+ \\ntrufalsn=/AZazKkT\r\t\u017f\u212a\u0130é"
	runes := []rune(alphabet)
	rng := rand.New(rand.NewPCG(1, 2))
	bases := files
	for range 3000 {
		s := []rune(string(bases[rng.IntN(len(bases))]))
		for range 1 + rng.IntN(4) {
			if len(s) == 0 {
				break
			}
			p := rng.IntN(len(s))
			switch op := rng.IntN(10); {
			case op < 3:
				s = append(s[:p], s[p+1:]...)
			case op < 6:
				s = append(s[:p], append([]rune{runes[rng.IntN(len(runes))]}, s[p:]...)...)
			case op < 9:
				s[p] = runes[rng.IntN(len(runes))]
			default:
				q := rng.IntN(len(s))
				chunk := append([]rune(nil), s[q:min(len(s), q+1+rng.IntN(12))]...)
				s = append(s[:p], append(chunk, s[p:]...)...)
			}
		}
		files = append(files, []byte(string(s)))
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	goResults := make([]string, len(files))
	accepted := 0
	for i, f := range files {
		if err := os.WriteFile(path, f, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := keyring.OpenFile(path, keyring.FileOptions{}); err != nil {
			goResults[i] = strings.TrimPrefix(err.Error(), "keyring: key file "+path+": ")
			continue
		}
		accepted++
	}

	in, err := json.Marshal(files) // []byte marshals as base64
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", prog)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", prog, err, stderr.String())
	}
	var tsResults []string
	if err := json.Unmarshal(out, &tsResults); err != nil || len(tsResults) != len(files) {
		t.Fatalf("node %s printed %d results (%v), want %d", prog, len(tsResults), err, len(files))
	}
	offset := regexp.MustCompile(` at byte \d+`)
	differ := 0
	for i := range files {
		g, s := offset.ReplaceAllString(goResults[i], ""), offset.ReplaceAllString(tsResults[i], "")
		if g != s {
			differ++
			if differ <= 10 {
				t.Errorf("file %q:\n  Go:         %q\n  TypeScript: %q", files[i], g, s)
			}
		}
	}
	if differ > 0 {
		t.Fatalf("%d of %d files differ", differ, len(files))
	}
	acceptedCases := 0
	for _, r := range goResults[:len(doc.Cases)] {
		if r == "" {
			acceptedCases++
		}
	}
	if accepted == acceptedCases || accepted == len(files) {
		t.Fatalf("%d of %d files accepted, %d of them cases: the edits do not reach both outcomes", accepted, len(files), acceptedCases)
	}
	t.Logf("%d files, %d accepted by both, the others refused by both for the same reason", len(files), accepted)
}
