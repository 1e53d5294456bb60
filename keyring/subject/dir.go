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
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// DirStoreName is the [Dir] store's label in key IDs.
const DirStoreName = "dir"

const dirWrapAAD = "envelope/subject-wrap/v1\x00"

// Dir is a [Store] that keeps each data subject's key in a file of its own,
// <dir>/<subject>.key (mode 0600). It is meant for development and single
// hosts: Shred overwrites the file and unlinks it, which makes the key
// unrecoverable from the file system on ordinary disks, but not from
// copy-on-write file systems, SSD remapping or backups of the folder (see
// docs/ERASURE.md). Creation is race-free across processes: the key is
// written to a temporary file and hard-linked into place, which fails if
// another process got there first; the loser then uses the winner's key.
//
// A subject's key has a random generation, part of the key ID: after a
// shred a new key for the same subject never opens the old payloads, which
// stay erased.
type Dir struct {
	dir string
}

var _ Store = (*Dir)(nil)

// NewDir returns a Dir store in dir, creating the folder (mode 0700) if
// it is missing. It refuses a folder that group or others can write:
// whoever can write it can plant a key they know for a subject, or a
// symlink.
func NewDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("subject: empty key folder")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("subject: key folder %s is not a folder", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("subject: key folder %s has mode %s: group or others can write it; restrict it with chmod 700", dir, perm)
	}
	return &Dir{dir: dir}, nil
}

// maxKeyFileSize bounds what load reads of a key file.
const maxKeyFileSize = 4096

// open opens subject's key file without following a symlink (and without
// blocking on a FIFO) and checks that it is a regular file that group and
// others cannot write. A missing file is fs.ErrNotExist.
func (d *Dir) open(subject string, flag int) (*os.File, os.FileInfo, error) {
	p := d.path(subject)
	f, err := os.OpenFile(p, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, fmt.Errorf("subject: key file %s is a symlink", p)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("subject: key file %s is not a regular file", p)
	case fi.Mode().Perm()&0o022 != 0:
		err = fmt.Errorf("subject: key file %s has mode %s: group or others can write it", p, fi.Mode().Perm())
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// Name implements Store.
func (d *Dir) Name() string { return DirStoreName }

type dirKeyFile struct {
	Version    int       `json:"version"`
	Subject    string    `json:"subject"`
	Generation string    `json:"generation"`
	Created    time.Time `json:"created"`
	Key        []byte    `json:"key"` // base64 in JSON
}

func (d *Dir) path(subject string) string { return filepath.Join(d.dir, subject+".key") }

// load reads subject's key file; a missing file is fs.ErrNotExist.
func (d *Dir) load(subject string) (*dirKeyFile, error) {
	fh, _, err := d.open(subject, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxKeyFileSize))
	fh.Close()
	if err != nil {
		return nil, fmt.Errorf("subject: key file of %q: %w", subject, err)
	}
	if len(b) > 0 && bytes.Count(b, []byte{0}) == len(b) {
		// Shred is between overwriting and unlinking the file.
		return nil, fs.ErrNotExist
	}
	var f dirKeyFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || f.Subject != subject || len(f.Key) != 32 || f.Generation == "" {
		return nil, fmt.Errorf("subject: key file of %q is malformed", subject)
	}
	return &f, nil
}

// loadOrCreate returns subject's key, creating it if there is none.
func (d *Dir) loadOrCreate(subject string) (*dirKeyFile, error) {
	f, err := d.load(subject)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	gen := make([]byte, 8)
	key := make([]byte, 32)
	rand.Read(gen)
	rand.Read(key)
	nf := &dirKeyFile{Version: 1, Subject: subject, Generation: hex.EncodeToString(gen), Created: time.Now().UTC(), Key: key}
	b, err := json.Marshal(nf)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(d.dir, ".new-*")
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("subject: write key of %q: %w", subject, werr)
	}
	// Link, unlike rename, never replaces a key another process created
	// in the meantime.
	if err := os.Link(tmp.Name(), d.path(subject)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return d.load(subject)
		}
		return nil, fmt.Errorf("subject: create key of %q: %w", subject, err)
	}
	syncDir(d.dir)
	return nf, nil
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

func subjectAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// NewDataKey implements Store.
func (d *Dir) NewDataKey(ctx context.Context, subject string) (keyring.DataKey, error) {
	if err := keyring.ValidSubject(subject); err != nil {
		return keyring.DataKey{}, fmt.Errorf("subject: %w", err)
	}
	f, err := d.loadOrCreate(subject)
	if err != nil {
		return keyring.DataKey{}, err
	}
	aead, err := subjectAEAD(f.Key)
	if err != nil {
		return keyring.DataKey{}, err
	}
	id := keyID(DirStoreName, subject, f.Generation)
	dek := make([]byte, keyring.DataKeySize)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(dek)
	rand.Read(nonce)
	wrapped := aead.Seal(nonce, nonce, dek, []byte(dirWrapAAD+id))
	return keyring.DataKey{KeyID: id, Wrapped: wrapped, Key: keyring.NewSecret(dek)}, nil
}

// UnwrapDataKeys implements Store. Each subject's file is read once per
// call.
func (d *Dir) UnwrapDataKeys(ctx context.Context, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	files := map[string]*dirKeyFile{}
	out := make([]keyring.Secret, len(keys))
	for i, w := range keys {
		subject, gen, err := parseKeyID(DirStoreName, w.KeyID)
		if err != nil {
			return nil, &keyring.KeyError{Index: i, Err: err}
		}
		f, ok := files[subject]
		if !ok {
			f, err = d.load(subject)
			if errors.Is(err, fs.ErrNotExist) {
				f, err = nil, nil
			}
			if err != nil {
				return nil, err
			}
			files[subject] = f
		}
		if f == nil || f.Generation != gen {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("subject: key %q: %w", truncate(w.KeyID), keyring.ErrErased)}
		}
		aead, err := subjectAEAD(f.Key)
		if err != nil {
			return nil, err
		}
		if len(w.Wrapped) != aead.NonceSize()+keyring.DataKeySize+aead.Overhead() {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("subject: key %q: wrapped data key is %d bytes, want %d: %w", truncate(w.KeyID), len(w.Wrapped), aead.NonceSize()+keyring.DataKeySize+aead.Overhead(), keyring.ErrUnwrap)}
		}
		dek, err := aead.Open(nil, w.Wrapped[:aead.NonceSize()], w.Wrapped[aead.NonceSize():], []byte(dirWrapAAD+w.KeyID))
		if err != nil {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("subject: key %q: %w", truncate(w.KeyID), keyring.ErrUnwrap)}
		}
		out[i] = keyring.NewSecret(dek)
	}
	return out, nil
}

// Shred implements Store: it overwrites the key file with zeros, syncs it,
// unlinks it and syncs the folder.
func (d *Dir) Shred(ctx context.Context, subject string) (bool, error) {
	if err := keyring.ValidSubject(subject); err != nil {
		return false, fmt.Errorf("subject: %w", err)
	}
	p := d.path(subject)
	f, st, err := d.open(subject, os.O_WRONLY)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.WriteAt(make([]byte, st.Size()), 0)
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return false, fmt.Errorf("overwrite key file: %w", err)
	}
	if err := os.Remove(p); err != nil {
		return false, fmt.Errorf("remove key file: %w", err)
	}
	syncDir(d.dir)
	return true, nil
}
