package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
)

// TestRetireLegacyKeyWithEmptyID: the samples' default key ID is empty, and
// docs/OPERATIONS.md tells operators to retire it by that empty ID
// once those histories are gone. The empty ID must be taken as the ID, before
// or after the flags, not as a missing argument.
func TestRetireLegacyKeyWithEmptyID(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"retire", "", "--file"},
		{"retire", "--file", "FILE", ""},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "keys.json")
			if _, e, code := keysCmd(t, "", "new", "--file", file); code != 0 {
				t.Fatalf("new: %s", e)
			}
			if _, e, code := keysCmd(t, "test-key-test-key-test-key-test!", "add-legacy", "--id", "", "--file", file); code != 0 {
				t.Fatalf("add-legacy: %s", e)
			}
			var argv []string
			for _, a := range args {
				if a == "FILE" {
					a = file
				}
				argv = append(argv, a)
			}
			if argv[len(argv)-1] == "--file" {
				argv = append(argv, file)
			}
			if _, e, code := keysCmd(t, "", argv...); code != 0 {
				t.Fatalf("keys %q: exit %d: %s", argv, code, e)
			}
			infos, err := keyring.ListFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range infos {
				if k.Legacy && k.ID == "" && k.Retired.IsZero() {
					t.Fatal("the legacy key with the empty ID is not retired")
				}
			}
		})
	}
	// A missing ID is still a usage error.
	file := filepath.Join(t.TempDir(), "keys.json")
	if _, _, code := keysCmd(t, "", "retire", "--file", file); code != 2 {
		t.Errorf("retire without an ID: exit %d, want 2", code)
	}
}
