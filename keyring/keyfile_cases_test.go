package keyring_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
)

// TestKeyFileCasesShared reads keyring/testdata/keyfile-cases.json, the key
// files that the Go parser and the TypeScript one (typescript/test) must
// accept or refuse alike, with the same reason.
func TestKeyFileCasesShared(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "keyfile-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			Name  string  `json:"name"`
			File  string  `json:"file"`
			Error *string `json:"error"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) < 10 {
		t.Fatalf("%d cases, want at least 10", len(doc.Cases))
	}
	for _, tc := range doc.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "keys.json")
			if err := os.WriteFile(path, []byte(tc.File), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := keyring.OpenFile(path, keyring.FileOptions{})
			switch {
			case tc.Error == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.Error != nil && err == nil:
				t.Fatalf("accepted, want a refusal with %q", *tc.Error)
			case tc.Error != nil && !strings.Contains(err.Error(), *tc.Error):
				t.Fatalf("refused with %q, want %q in it", err, *tc.Error)
			}
		})
	}
}
