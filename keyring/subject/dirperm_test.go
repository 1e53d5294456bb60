package subject_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// handleOf returns the handle of subject in namespace "default".
func handleOf(t *testing.T, d *subject.Dir, subj string) string {
	t.Helper()
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	h, err := kr.Handle(context.Background(), "default", subj)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestDirStoreRefusesSharedFiles checks the Dir store like the key file
// keyring: whoever can read the key folder or a key file has the key;
// whoever can write them can plant a key they know (every new payload of
// the subject readable by them) or a symlink that Shred would follow,
// zeroing a file of their choice.
func TestDirStoreRefusesSharedFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	for _, mode := range []os.FileMode{0o777, 0o755, 0o750} {
		t.Run("folder with mode "+mode.String(), func(t *testing.T) {
			d := newDir(t)
			if err := os.Chmod(d.Folder(), mode); err != nil {
				t.Fatal(err)
			}
			if _, err := subject.NewDir(d.Folder()); err == nil {
				t.Fatalf("NewDir accepted a folder of mode %s", mode)
			}
		})
	}

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
		d := newDir(t)
		h := handleOf(t, d, "alice")
		victim := filepath.Join(t.TempDir(), "victim")
		content := []byte("precious data")
		if err := os.WriteFile(victim, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, filepath.Join(d.Folder(), h+".key")); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Shred(ctx, "default", h); err == nil {
			t.Error("Shred of a symlinked key file succeeded")
		}
		if got, _ := os.ReadFile(victim); !bytes.Equal(got, content) {
			t.Errorf("Shred overwrote the symlink's target: %q", got)
		}
		if _, err := d.NewDataKey(ctx, "default", h); err == nil {
			t.Error("NewDataKey used a symlinked key file")
		}
	})

	t.Run("shred leaves a file that is not the handle's key alone", func(t *testing.T) {
		d := newDir(t)
		h := handleOf(t, d, "erin")
		p := filepath.Join(d.Folder(), h+".key")
		content := []byte(`{"something":"else"}`)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Shred(ctx, "default", h); err == nil {
			t.Error("Shred of a file that holds no key of the handle succeeded")
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, content) {
			t.Errorf("Shred overwrote a file that is not the handle's key: %q", got)
		}
	})

	for _, mode := range []os.FileMode{0o666, 0o644, 0o640} {
		t.Run("key file with mode "+mode.String(), func(t *testing.T) {
			d := newDir(t)
			h := handleOf(t, d, "bob")
			dk, err := d.NewDataKey(ctx, "default", h)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(d.Folder(), h+".key"), mode); err != nil {
				t.Fatal(err)
			}
			if _, err := d.NewDataKey(ctx, "default", h); err == nil {
				t.Error("NewDataKey used a key file others can use")
			}
			_, err = d.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}})
			if err == nil || errors.Is(err, keyring.ErrErased) {
				t.Errorf("UnwrapDataKeys with a key file others can use: %v, want a refusal that is not ErrErased", err)
			}
		})
	}

	t.Run("new files are 0600 in a 0700 folder", func(t *testing.T) {
		d := newDir(t)
		h := handleOf(t, d, "carol")
		if _, err := d.NewDataKey(ctx, "default", h); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Shred(ctx, "default", handleOf(t, d, "dan")); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(d.Folder())
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("folder mode %v, want 0700", fi.Mode().Perm())
		}
		ents, _ := os.ReadDir(d.Folder())
		for _, e := range ents {
			fi, _ := e.Info()
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode().Perm())
			}
		}
	})
}

// TestDirStoreMustBeInitialised: a folder that is not an initialised
// store (missing, empty, another store's leftovers) is never used as one,
// so a wrong or unmounted folder cannot make payloads look erased or take
// keys nobody else can reach.
func TestDirStoreMustBeInitialised(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := subject.NewDir(missing); !errors.Is(err, subject.ErrNotInitialised) {
		t.Errorf("a missing folder: err %v, want ErrNotInitialised", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("NewDir created the missing folder")
	}
	empty := t.TempDir()
	os.Chmod(empty, 0o700)
	if _, err := subject.NewDir(empty); !errors.Is(err, subject.ErrNotInitialised) {
		t.Errorf("an empty folder: err %v, want ErrNotInitialised", err)
	}
	d := newDir(t)
	if _, err := subject.InitDir(d.Folder()); err == nil {
		t.Error("InitDir initialised a store twice")
	}
	again, err := subject.NewDir(d.Folder())
	if err != nil || again.ID() != d.ID() || d.ID() == "" {
		t.Errorf("reopened store: %v, ID %q, want %q", err, again.ID(), d.ID())
	}
	other := newDir(t)
	if other.ID() == d.ID() || handleOf(t, other, "x") == handleOf(t, d, "x") {
		t.Error("two stores share an identity or handles")
	}
}

// TestDirStoreFinishesInterruptedShred: a shred that zeroed the key file
// but did not unlink it (a crash) leaves the subject erased and blocked,
// and the next shred finishes it.
func TestDirStoreFinishesInterruptedShred(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDir(t)
	h := handleOf(t, d, "frank")
	dk, err := d.NewDataKey(ctx, "default", h)
	if err != nil {
		t.Fatal(err)
	}
	// What Shred writes before zeroing the key: the tombstone.
	var file struct {
		Generation string `json:"generation"`
	}
	p := filepath.Join(d.Folder(), h+".key")
	raw, _ := os.ReadFile(p)
	json.Unmarshal(raw, &file)
	tomb, _ := json.Marshal(map[string]any{"version": 1, "handle": h, "erased": []string{file.Generation}, "blocked": true})
	if err := os.WriteFile(filepath.Join(d.Folder(), h+".tomb"), tomb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, len(raw)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}}); !errors.Is(err, keyring.ErrErased) {
		t.Errorf("a zeroed key file: err %v, want ErrErased", err)
	}
	if _, err := d.NewDataKey(ctx, "default", h); !errors.Is(err, keyring.ErrErased) {
		t.Errorf("sealing with a zeroed key file: err %v, want ErrErased", err)
	}
	if existed, err := d.Shred(ctx, "default", h); err != nil || !existed {
		t.Fatalf("the next shred: existed %v, err %v", existed, err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the zeroed key file is still there: %v", err)
	}
}
