package ownerfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/internal/ownerfile"
)

func TestCheckRefusesFilesOthersCanChange(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		fileMode  os.FileMode
		dirMode   os.FileMode
		wantError string // "" accepts
	}{
		{"owner only, private folder", 0o600, 0o700, ""},
		{"group readable, ordinary folder", 0o640, 0o755, ""},
		{"group writable file", 0o620, 0o700, "lets group or others write it"},
		{"a folder anyone can write, no sticky bit", 0o600, 0o777, "no sticky bit"},
		{"a folder anyone can write, with the sticky bit (like /tmp)", 0o600, 0o777 | os.ModeSticky, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "secret")
			if err := os.WriteFile(path, []byte("k"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			_, _, err := ownerfile.Read(path, 10, ownerfile.Check)
			if tt.wantError == "" {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantError) || !errors.Is(err, ownerfile.ErrUnsafe) {
				t.Fatalf("Read = %v, want ErrUnsafe saying %q", err, tt.wantError)
			}
		})
	}
}

// TestCheckRefusesAnotherUsersFile runs as root only: only root can give a
// file to another user.
func TestCheckRefusesAnotherUsersFile(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ownerfile.Read(path, 10, ownerfile.Check); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("Read = %v, want a refusal naming the owner", err)
	}
	// An administrator may edit it (keys commands run as root).
	if _, _, err := ownerfile.Read(path, 10, ownerfile.CheckShared); err != nil {
		t.Fatalf("Read with CheckShared: %v", err)
	}
}

func TestReadStopsAtItsLimit(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	f, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ownerfile.ReadAtMost(f, 4096); !errors.Is(err, ownerfile.ErrTooLarge) {
		t.Fatalf("ReadAtMost(/dev/zero) = %v, want ErrTooLarge", err)
	}
	if _, _, err := ownerfile.Read("/dev/zero", 4096, ownerfile.Check); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Read(/dev/zero) = %v, want a refusal of a device", err)
	}
}

func TestWriteLeavesNoTemporaryFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := ownerfile.Write(path, []byte("one"), ownerfile.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new file: %v %v, want mode 0600", fi.Mode(), err)
	}
	// Creating again refuses to replace it.
	if err := ownerfile.Write(path, []byte("two"), ownerfile.WriteOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create = %v, want fs.ErrExist", err)
	}
	// A replace that fails at the rename (a folder is in the way).
	old, _ := os.Stat(path)
	blocked := filepath.Join(dir, "blocked")
	if err := os.Mkdir(blocked, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blocked, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ownerfile.Write(blocked, []byte("three"), ownerfile.WriteOptions{Replace: old}); err == nil {
		t.Fatal("replacing a non-empty folder succeeded")
	}
	// A replace that works keeps the mode.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	old, _ = os.Stat(path)
	if err := ownerfile.Write(path, []byte("four"), ownerfile.WriteOptions{Replace: old}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("replaced file mode %v, want 0640", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
