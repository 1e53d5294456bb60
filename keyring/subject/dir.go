package subject

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/envelopecodec/envelope/internal/ownerfile"
	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// DirStoreName is the [Dir] store's label in key IDs.
const DirStoreName = "dir"

const dirWrapAAD = "envelope/subject-wrap/v1\x00"

// dirIdentityFile names the file that makes a folder a Dir store: its
// identity and its handle key.
const dirIdentityFile = "store.json"

// Dir is a [Store] that keeps each data subject handle's key in a file of
// its own, <dir>/<handle>.key (mode 0600, folder 0700), and the tombstone
// a shred leaves in <dir>/<handle>.tomb. <dir>/store.json holds the
// store's identity and the HMAC key of its handles. It is meant for
// development and single hosts: Shred overwrites the key file and unlinks
// it, which makes the key unrecoverable from the file system on ordinary
// disks, but not from copy-on-write file systems, SSD remapping or
// backups of the folder (see docs/ERASURE.md). Creation is race-free
// across processes: the key is written to a temporary file and
// hard-linked into place, which fails if another process got there first;
// the loser then uses the winner's key.
//
// A handle's key has a random generation, part of the key ID: after a
// shred and a re-admission the new key never opens the old payloads, which
// stay erased.
type Dir struct {
	dir       string
	id        string
	handleKey []byte
}

var _ Store = (*Dir)(nil)

type dirIdentity struct {
	Version   int    `json:"version"`
	Store     string `json:"store"`
	ID        string `json:"id"`
	HandleKey []byte `json:"handle_key"` // base64 in JSON
}

// InitDir creates a Dir store in dir: the folder (mode 0700) if missing,
// which must otherwise be empty and owner-only, and its identity file. It
// refuses a folder that is already a store, or holds anything else.
func InitDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("subject: empty key folder")
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("subject: create key folder: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	if len(ents) > 0 {
		return nil, fmt.Errorf("subject: key folder %s is not empty (%s): a store is initialised once, in an empty folder", dir, ents[0].Name())
	}
	id := make([]byte, 8)
	key := make([]byte, 32)
	rand.Read(id)
	rand.Read(key)
	d := &Dir{dir: dir, id: hex.EncodeToString(id), handleKey: key}
	b, err := json.Marshal(dirIdentity{Version: 1, Store: DirStoreName, ID: d.id, HandleKey: key})
	if err != nil {
		return nil, err
	}
	if err := d.create(dirIdentityFile, b); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("subject: key folder %s is already a store", dir)
		}
		return nil, err
	}
	return d, nil
}

// NewDir opens the Dir store in dir. It fails with [ErrNotInitialised] if
// dir is missing or not an initialised store (it never creates one), and
// refuses a folder or identity file that group or others can read or
// write.
func NewDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("subject: empty key folder")
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("subject: key folder %s does not exist: %w", dir, ErrNotInitialised)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	d := &Dir{dir: dir}
	b, err := d.read(dirIdentityFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("subject: key folder %s has no %s: %w", dir, dirIdentityFile, ErrNotInitialised)
	}
	if err != nil {
		return nil, err
	}
	var id dirIdentity
	if err := json.Unmarshal(b, &id); err != nil || id.Version != 1 || id.Store != DirStoreName || id.ID == "" || len(id.HandleKey) != 32 {
		return nil, fmt.Errorf("subject: %s in %s is malformed: %w", dirIdentityFile, dir, ErrNotInitialised)
	}
	d.id, d.handleKey = id.ID, id.HandleKey
	return d, nil
}

// checkDir checks that dir is a folder only its owner can use.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("subject: key folder %s is not a folder", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("subject: key folder %s has mode %s: group or others can use it; restrict it with chmod 700", dir, perm)
	}
	return nil
}

// maxKeyFileSize bounds what read reads of a file.
const maxKeyFileSize = 64 << 10

// open opens a file of the store for Shred without following a symlink
// (and without blocking on a FIFO) and checks that it is a regular file
// only its owner can use. A missing file is fs.ErrNotExist.
func (d *Dir) open(name string, flag int) (*os.File, os.FileInfo, error) {
	p := filepath.Join(d.dir, name)
	f, err := os.OpenFile(p, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, fmt.Errorf("subject: file %s is a symlink", p)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("subject: file %s is not a regular file", p)
	case fi.Mode().Perm()&0o077 != 0:
		err = fmt.Errorf("subject: file %s has mode %s: group or others can use it; restrict it with chmod 600", p, fi.Mode().Perm())
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// read reads a file of the store (ownerfile.Read, at most
// maxKeyFileSize bytes); a missing file is fs.ErrNotExist.
func (d *Dir) read(name string) ([]byte, error) {
	b, _, err := ownerfile.Read(filepath.Join(d.dir, name), maxKeyFileSize, checkOwnerOnly)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("subject: %w", err)
	}
	return b, err
}

// checkOwnerOnly is ownerfile.Check, and refuses a file group or others
// can read: it holds a key.
func checkOwnerOnly(path string, fi os.FileInfo) error {
	if err := ownerfile.Check(path, fi); err != nil {
		return fmt.Errorf("file %s: %w", path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("file %s has mode %s: group or others can use it; restrict it with chmod 600", path, perm)
	}
	return nil
}

// create writes a new file (mode 0600) that must not exist yet
// (ownerfile.Write: synced, hard-linked into place, fs.ErrExist if
// another process was first, the folder synced).
func (d *Dir) create(name string, b []byte) error {
	err := ownerfile.Write(filepath.Join(d.dir, name), b, ownerfile.WriteOptions{TempPattern: ".new-*"})
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("subject: create %s: %w", name, err)
	}
	return err
}

// replace writes a file (mode 0600), replacing it if it exists, and
// syncs the folder.
func (d *Dir) replace(name string, b []byte) error {
	p := filepath.Join(d.dir, name)
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d.create(name, b)
	case err != nil:
		return fmt.Errorf("subject: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("subject: file %s is not a regular file", p)
	}
	if err := ownerfile.Write(p, b, ownerfile.WriteOptions{Replace: fi, TempPattern: ".new-*"}); err != nil {
		return fmt.Errorf("subject: write %s: %w", name, err)
	}
	return nil
}

// syncDir syncs the folder, so that a created or removed name survives a
// crash.
func (d *Dir) syncDir() error {
	if err := ownerfile.SyncDir(d.dir); err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	return nil
}

// lock takes the store's lock (a flock on its folder) for Shred and
// Readmit, which read, change and write back a tombstone: run at the same
// time, in one process or several, each would otherwise write back its
// own copy and lose the other's change (an erased generation, a block).
// Seals do not take it.
func (d *Dir) lock() (unlock func(), err error) {
	unlock, err = ownerfile.Lock(d.dir)
	if err != nil {
		return nil, fmt.Errorf("subject: lock key folder: %w", err)
	}
	return unlock, nil
}

// Name implements Store.
func (d *Dir) Name() string { return DirStoreName }

// Folder returns the store's folder.
func (d *Dir) Folder() string { return d.dir }

// ID implements Store.
func (d *Dir) ID() string { return d.id }

// Handle implements Store with HMAC-SHA256 under the store's handle key.
func (d *Dir) Handle(ctx context.Context, namespace, subject string) (string, error) {
	return localHandle(d.handleKey, namespace, subject), nil
}

type dirKeyFile struct {
	Version    int       `json:"version"`
	Handle     string    `json:"handle"`
	Generation string    `json:"generation"`
	Created    time.Time `json:"created"`
	Key        []byte    `json:"key"` // base64 in JSON
}

// dirTombstone is what a shred leaves: the generations it erased, and
// whether new keys are blocked (until Readmit).
type dirTombstone struct {
	Version  int       `json:"version"`
	Handle   string    `json:"handle"`
	Erased   []string  `json:"erased"`
	Blocked  bool      `json:"blocked"`
	Shredded time.Time `json:"shredded"`
}

func keyFile(handle string) string  { return handle + ".key" }
func tombFile(handle string) string { return handle + ".tomb" }

// errZeroed means a key file was overwritten by a shred that did not get
// to unlink it.
var errZeroed = errors.New("subject: key file zeroed by an unfinished shred")

// load reads handle's key file; a missing file is fs.ErrNotExist, a
// zeroed one errZeroed.
func (d *Dir) load(handle string) (*dirKeyFile, error) {
	b, err := d.read(keyFile(handle))
	if err != nil {
		return nil, err
	}
	if len(b) > 0 && bytes.Count(b, []byte{0}) == len(b) {
		return nil, errZeroed
	}
	var f dirKeyFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 2 || f.Handle != handle || len(f.Key) != 32 || !validGeneration(f.Generation) {
		return nil, fmt.Errorf("subject: key file of handle %s is malformed", handle)
	}
	return &f, nil
}

// tombstone reads handle's tombstone; nil if there is none.
func (d *Dir) tombstone(handle string) (*dirTombstone, error) {
	b, err := d.read(tombFile(handle))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var t dirTombstone
	if err := json.Unmarshal(b, &t); err != nil || t.Version != 1 || t.Handle != handle {
		return nil, fmt.Errorf("subject: tombstone of handle %s is malformed", handle)
	}
	return &t, nil
}

func blocked(handle string) error {
	return fmt.Errorf("subject: data subject handle %s was shredded; sealing for it fails until it is re-admitted (codec-server keys readmit): %w", handle, keyring.ErrErased)
}

// loadOrCreate returns handle's key, creating it if there is none and no
// tombstone blocks it.
func (d *Dir) loadOrCreate(handle string) (*dirKeyFile, error) {
	t, err := d.tombstone(handle)
	if err != nil {
		return nil, err
	}
	if t != nil && t.Blocked {
		return nil, blocked(handle)
	}
	f, err := d.load(handle)
	if errors.Is(err, errZeroed) {
		return nil, blocked(handle)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	gen := make([]byte, 8)
	key := make([]byte, 32)
	rand.Read(gen)
	rand.Read(key)
	nf := &dirKeyFile{Version: 2, Handle: handle, Generation: hex.EncodeToString(gen), Created: time.Now().UTC(), Key: key}
	b, err := json.Marshal(nf)
	if err != nil {
		return nil, err
	}
	if err := d.create(keyFile(handle), b); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return d.load(handle)
		}
		return nil, err
	}
	// A shred may have written its tombstone between the check above
	// and the creation: then the new key must not be used.
	if t, err := d.tombstone(handle); err != nil || t != nil && t.Blocked {
		if err == nil {
			err = blocked(handle)
		}
		return nil, err
	}
	return nf, nil
}

func subjectAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// NewDataKey implements Store.
func (d *Dir) NewDataKey(ctx context.Context, _, handle string) (keyring.DataKey, error) {
	if err := keyring.ValidSubjectHandle(handle); err != nil {
		return keyring.DataKey{}, fmt.Errorf("subject: %w", err)
	}
	f, err := d.loadOrCreate(handle)
	if err != nil {
		return keyring.DataKey{}, err
	}
	aead, err := subjectAEAD(f.Key)
	if err != nil {
		return keyring.DataKey{}, err
	}
	id := keyID(DirStoreName, handle, f.Generation)
	dek := make([]byte, keyring.DataKeySize)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(dek)
	rand.Read(nonce)
	wrapped := aead.Seal(nonce, nonce, dek, []byte(dirWrapAAD+id))
	return keyring.DataKey{KeyID: id, Wrapped: wrapped, Key: keyring.NewSecret(dek)}, nil
}

// UnwrapDataKeys implements Store. Each handle's files are read once per
// call.
func (d *Dir) UnwrapDataKeys(ctx context.Context, _ string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	type state struct {
		f *dirKeyFile
		t *dirTombstone
	}
	files := map[string]*state{}
	out := make([]keyring.Secret, len(keys))
	for i, w := range keys {
		handle, gen, err := parseKeyID(DirStoreName, w.KeyID)
		if err != nil {
			return nil, &keyring.KeyError{Index: i, Err: err}
		}
		st, ok := files[handle]
		if !ok {
			st = &state{}
			st.f, err = d.load(handle)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errZeroed) {
				st.f, err = nil, nil
			}
			if err != nil {
				return nil, &keyring.KeyError{Index: i, Err: err}
			}
			if st.f == nil || st.f.Generation != gen {
				if st.t, err = d.tombstone(handle); err != nil {
					return nil, &keyring.KeyError{Index: i, Err: err}
				}
			}
			files[handle] = st
		}
		if st.f == nil || st.f.Generation != gen {
			if st.t == nil && st.f != nil {
				// Read lazily: another generation of a live key.
				if st.t, err = d.tombstone(handle); err != nil {
					return nil, &keyring.KeyError{Index: i, Err: err}
				}
			}
			if st.t != nil && slices.Contains(st.t.Erased, gen) {
				return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("subject: key %q: %w", truncate.To(w.KeyID, maxKeyIDInError), keyring.ErrErased)}
			}
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("subject: key %q is not in the dir store: %w", truncate.To(w.KeyID, maxKeyIDInError), keyring.ErrUnknownKey)}
		}
		aead, err := subjectAEAD(st.f.Key)
		if err != nil {
			return nil, err
		}
		if len(w.Wrapped) != aead.NonceSize()+keyring.DataKeySize+aead.Overhead() {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("subject: key %q: wrapped data key is %d bytes, want %d: %w", truncate.To(w.KeyID, maxKeyIDInError), len(w.Wrapped), aead.NonceSize()+keyring.DataKeySize+aead.Overhead(), keyring.ErrUnwrap)}
		}
		dek, err := aead.Open(nil, w.Wrapped[:aead.NonceSize()], w.Wrapped[aead.NonceSize():], []byte(dirWrapAAD+w.KeyID))
		if err != nil {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("subject: key %q: %w", truncate.To(w.KeyID, maxKeyIDInError), keyring.ErrUnwrap)}
		}
		out[i] = keyring.NewSecret(dek)
	}
	return out, nil
}

// Shred implements Store: it checks that the key file holds handle's key,
// writes the tombstone (synced), looks for a key again if there was none
// (a first seal racing the shred), overwrites the key file with zeros,
// syncs it, unlinks it and syncs the folder. A key file left zeroed by an
// interrupted shred is removed.
func (d *Dir) Shred(ctx context.Context, _, handle string) (bool, error) {
	if err := keyring.ValidSubjectHandle(handle); err != nil {
		return false, fmt.Errorf("subject: %w", err)
	}
	unlock, err := d.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	f, err := d.load(handle)
	zeroed := errors.Is(err, errZeroed)
	switch {
	case errors.Is(err, fs.ErrNotExist), zeroed:
		f = nil
	case err != nil:
		return false, err
	}
	t, err := d.tombstone(handle)
	if err != nil {
		return false, err
	}
	if t == nil {
		t = &dirTombstone{Version: 1, Handle: handle}
	}
	t.Blocked, t.Shredded = true, time.Now().UTC()
	for {
		if f != nil && !slices.Contains(t.Erased, f.Generation) {
			t.Erased = append(t.Erased, f.Generation)
		}
		b, err := json.Marshal(t)
		if err != nil {
			return false, err
		}
		if err := d.replace(tombFile(handle), b); err != nil {
			return false, err
		}
		if f != nil || zeroed {
			break
		}
		// A seal may have created the handle's first key after the load
		// above and checked for a tombstone before ours: look again now
		// that the tombstone blocks new keys, so that key is erased too.
		f, err = d.load(handle)
		zeroed = errors.Is(err, errZeroed)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		case zeroed:
			f = nil
		case err != nil:
			return false, err
		}
	}
	p := filepath.Join(d.dir, keyFile(handle))
	if f != nil {
		fh, st, err := d.open(keyFile(handle), os.O_WRONLY)
		if err != nil {
			return false, err
		}
		_, err = fh.WriteAt(make([]byte, st.Size()), 0)
		if err == nil {
			err = fh.Sync()
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return false, fmt.Errorf("subject: overwrite key file: %w", err)
		}
	}
	if err := os.Remove(p); err != nil {
		return false, fmt.Errorf("subject: remove key file: %w", err)
	}
	if err := d.syncDir(); err != nil {
		return false, err
	}
	return true, nil
}

// errUnfinishedShred is Readmit's refusal while a shred of handle left
// its key in place.
func errUnfinishedShred(handle string) error {
	return fmt.Errorf("subject: handle %s has an unfinished shred: run the shred again first", handle)
}

// Readmit implements Store: the tombstone stays (old generations stay
// erased) but no longer blocks new keys. It refuses while an unfinished
// shred left the handle's key in place.
func (d *Dir) Readmit(ctx context.Context, _, handle string) (bool, error) {
	if err := keyring.ValidSubjectHandle(handle); err != nil {
		return false, fmt.Errorf("subject: %w", err)
	}
	unlock, err := d.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	t, err := d.tombstone(handle)
	if err != nil || t == nil || !t.Blocked {
		return false, err
	}
	// A shred that recorded the key's generation as erased but did not
	// get to zero or remove its file left it able to open the payloads:
	// lifting the block now would keep it for good.
	if f, err := d.load(handle); errors.Is(err, errZeroed) || err == nil && slices.Contains(t.Erased, f.Generation) {
		return false, errUnfinishedShred(handle)
	}
	t.Blocked = false
	b, err := json.Marshal(t)
	if err != nil {
		return false, err
	}
	if err := d.replace(tombFile(handle), b); err != nil {
		return false, err
	}
	return true, nil
}
