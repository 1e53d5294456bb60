package keyring_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// TestKeyFileInAFolderOthersCanWrite: a key file whose folder others can
// write (no sticky bit) is refused at start, and at reload, where the keys
// loaded before stay and the failure is counted: another local user could
// rename a key file of their own over it.
func TestKeyFileInAFolderOthersCanWrite(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keys.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	f, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	active := f.ActiveKeyID()

	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.OpenFile(path, keyring.FileOptions{}); err == nil || !strings.Contains(err.Error(), "no sticky bit") {
		t.Fatalf("OpenFile = %v, want a refusal of the folder", err)
	}
	if _, err := f.Reload(); err == nil || !strings.Contains(err.Error(), "no sticky bit") {
		t.Fatalf("Reload = %v, want a refusal of the folder", err)
	}
	if f.ReloadFailures() != 1 || f.ActiveKeyID() != active {
		t.Errorf("after the refused reload: %d failures, active %s; want 1 and the old %s", f.ReloadFailures(), f.ActiveKeyID(), active)
	}

	// The sticky bit stops others from renaming over the file: accepted.
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reload(); err != nil {
		t.Fatalf("Reload with the sticky bit: %v", err)
	}
}

// TestKeyFileOwnedByAnotherUser: a key file another user owns (not root)
// is refused when run as root, the only user that can make one here;
// `keys` commands, which root runs on the service's file, still edit it.
func TestKeyFileOwnedByAnotherUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.OpenFile(path, keyring.FileOptions{}); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("OpenFile = %v, want a refusal naming the owner", err)
	}
	if _, err := keyring.AddKey(path, time.Now()); err != nil {
		t.Fatalf("AddKey on another user's file (as root): %v", err)
	}
}
