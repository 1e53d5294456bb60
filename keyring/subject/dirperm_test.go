package subject_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestDirStoreRefusesSharedFiles checks the Dir store like the key file
// keyring: whoever can write the key folder or a key file can plant a key
// they know (every new payload of the subject readable by them) or a
// symlink that Shred would follow, zeroing a file of their choice.
func TestDirStoreRefusesSharedFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("folder writable by others", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if _, err := subject.NewDir(dir); err == nil {
			t.Fatal("NewDir accepted a folder others can write")
		}
	})

	t.Run("folder is a file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := subject.NewDir(p); err == nil {
			t.Fatal("NewDir accepted a regular file")
		}
	})

	t.Run("shred does not follow a symlink", func(t *testing.T) {
		dir := t.TempDir()
		d, err := subject.NewDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		victim := filepath.Join(t.TempDir(), "victim")
		content := []byte("precious data")
		if err := os.WriteFile(victim, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, filepath.Join(dir, "alice.key")); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Shred(ctx, "alice"); err == nil {
			t.Error("Shred of a symlinked key file succeeded")
		}
		if got, _ := os.ReadFile(victim); !bytes.Equal(got, content) {
			t.Errorf("Shred overwrote the symlink's target: %q", got)
		}
		if _, err := d.NewDataKey(ctx, "alice"); err == nil {
			t.Error("NewDataKey used a symlinked key file")
		}
	})

	t.Run("key file writable by others", func(t *testing.T) {
		dir := t.TempDir()
		d, err := subject.NewDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		dk, err := d.NewDataKey(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "bob.key"), 0o666); err != nil {
			t.Fatal(err)
		}
		if _, err := d.NewDataKey(ctx, "bob"); err == nil {
			t.Error("NewDataKey used a key file others can write")
		}
		_, err = d.UnwrapDataKeys(ctx, []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}})
		if err == nil || errors.Is(err, keyring.ErrErased) {
			t.Errorf("UnwrapDataKeys with a key file others can write: %v, want a refusal that is not ErrErased", err)
		}
	})

	t.Run("new key file is 0600", func(t *testing.T) {
		dir := t.TempDir()
		d, _ := subject.NewDir(dir)
		if _, err := d.NewDataKey(ctx, "carol"); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "carol.key"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
		}
	})
}
