package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FileKeyIDPrefix starts the key ID of every key from a key file, so IDs
// from different keyrings never collide.
const FileKeyIDPrefix = "local/"

const (
	fileFormatVersion = 1
	wrapNonceSize     = 12
	// wrappedSize is nonce ‖ encrypted data key ‖ tag.
	wrappedSize = wrapNonceSize + DataKeySize + 16
	maxFileSize = 1 << 20
	maxKeyIDLen = 128
)

// fileJSON is the on-disk form of a key file.
type fileJSON struct {
	Version int           `json:"version"`
	Active  string        `json:"active"`
	Keys    []fileKeyJSON `json:"keys"`
}

type fileKeyJSON struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Key     string    `json:"key"` // base64 (standard encoding) of 32 bytes
	// Legacy marks a static key of the Temporal samples' encryption codec:
	// it only decodes payloads sealed directly under it, under its ID as
	// written by the samples (no FileKeyIDPrefix).
	Legacy bool `json:"legacy,omitempty"`
}

// KeyInfo describes a key in a key file without its key material.
type KeyInfo struct {
	ID      string // the ID inside the file, without FileKeyIDPrefix
	Created time.Time
	Active  bool
	Legacy  bool // a samples-codec static key, for decoding only
}

// keySet is one successfully parsed key file.
type keySet struct {
	active string // full key ID, with prefix
	keys   map[string]cipher.AEAD
	legacy map[string][]byte // static sample-codec keys by their plain ID
	infos  []KeyInfo
	digest []byte // the file's bytes, to notice changes
}

// parseKeyFile parses and validates a key file. Errors never contain key
// material.
func parseKeyFile(data []byte) (*keySet, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("file is %d bytes, more than the %d allowed", len(data), maxFileSize)
	}
	var f fileJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("malformed JSON: %s", jsonErrorReason(err))
	}
	if dec.More() {
		return nil, errors.New("malformed JSON: data after the top-level object")
	}
	if f.Version != fileFormatVersion {
		return nil, fmt.Errorf("unsupported version %d, want %d", f.Version, fileFormatVersion)
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("no keys")
	}
	ks := &keySet{keys: make(map[string]cipher.AEAD, len(f.Keys)), legacy: make(map[string][]byte)}
	for i, k := range f.Keys {
		// The samples' default key ID is "": a legacy key may have it.
		if err := validKeyID(k.ID); err != nil && !(k.Legacy && k.ID == "") {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		id := FileKeyIDPrefix + k.ID
		_, dup := ks.keys[id]
		_, dupLegacy := ks.legacy[k.ID]
		if dup || dupLegacy {
			return nil, fmt.Errorf("key %d: duplicate id %q", i, k.ID)
		}
		raw, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil {
			return nil, fmt.Errorf("key %q: key is not valid base64", k.ID)
		}
		if len(raw) != DataKeySize {
			return nil, fmt.Errorf("key %q: key is %d bytes, want %d", k.ID, len(raw), DataKeySize)
		}
		ks.infos = append(ks.infos, KeyInfo{ID: k.ID, Created: k.Created, Active: k.ID == f.Active, Legacy: k.Legacy})
		if k.Legacy {
			ks.legacy[k.ID] = raw
			continue
		}
		aead, err := newGCM(raw)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		ks.keys[id] = aead
	}
	if f.Active == "" {
		return nil, errors.New("no active key id")
	}
	if err := validKeyID(f.Active); err != nil {
		return nil, fmt.Errorf("active key id: %w", err)
	}
	if _, ok := ks.keys[FileKeyIDPrefix+f.Active]; !ok {
		if _, ok := ks.legacy[f.Active]; ok {
			return nil, fmt.Errorf("active key id %q is a legacy key, which only decodes", f.Active)
		}
		return nil, fmt.Errorf("active key id %q is not among the keys", f.Active)
	}
	ks.active = FileKeyIDPrefix + f.Active
	ks.digest = data
	return ks, nil
}

// jsonErrorReason describes a JSON error without quoting input, which could
// be key material.
func jsonErrorReason(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		return "cannot parse"
	}
}

func validKeyID(id string) error {
	if id == "" {
		return errors.New("empty id")
	}
	if len(id) > maxKeyIDLen {
		return fmt.Errorf("id is %d bytes, at most %d allowed", len(id), maxKeyIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			// Do not quote the id: a bad id may be key material in the wrong field.
			return errors.New("id has characters other than letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

// wrapAAD binds a wrapped data key to the key ID that wrapped it.
func wrapAAD(keyID string) []byte { return []byte("envelope/kek-wrap/v1\x00" + keyID) }

// FileOptions configures [OpenFile]. All fields are optional.
type FileOptions struct {
	// Logger receives warnings (loose file permissions, failed reloads).
	// Default: slog.Default().
	Logger *slog.Logger
}

// File is a keyring read from a local JSON key file. It is safe for
// concurrent use. Key IDs are FileKeyIDPrefix followed by the ID in the file.
type File struct {
	path   string
	logger *slog.Logger

	mu   sync.RWMutex
	keys *keySet
}

var (
	_ Keyring    = (*File)(nil)
	_ LegacyKeys = (*File)(nil)
	_ Checker    = (*File)(nil)
)

// OpenFile loads the key file at path. It warns through the logger when the
// file is readable by group or others. Call [File.Reload] or [File.Watch]
// to pick up changes.
func OpenFile(path string, opts FileOptions) (*File, error) {
	f := &File{path: path, logger: opts.Logger}
	if f.logger == nil {
		f.logger = slog.Default()
	}
	ks, err := f.load()
	if err != nil {
		return nil, err
	}
	f.keys = ks
	return f, nil
}

func (f *File) load() (*keySet, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	if looselyReadable(fi) {
		f.logger.Warn("key file is readable by group or others; restrict it with chmod 600",
			"file", f.path, "mode", fi.Mode().Perm().String())
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	ks, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	return ks, nil
}

// looselyReadable reports whether others, or a group the process is not in,
// can read or write the file. Group access for the process's own group is
// fine: Kubernetes mounts secrets root-owned with the pod's fsGroup and
// mode 0440 at best.
func looselyReadable(fi os.FileInfo) bool {
	perm := fi.Mode().Perm()
	if perm&0o007 != 0 {
		return true
	}
	if perm&0o070 == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	if int(st.Gid) == os.Getgid() {
		return false
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g == int(st.Gid) {
			return false
		}
	}
	return true
}

// Reload reads the key file again. On error the keys loaded before stay in
// use and the error says why the new file was refused. It reports whether
// the keys changed.
func (f *File) Reload() (changed bool, err error) {
	ks, err := f.load()
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if bytes.Equal(f.keys.digest, ks.digest) {
		return false, nil
	}
	f.keys = ks
	return true, nil
}

// Watch reloads the key file every interval until ctx is done, logging
// refused files and changes of the active key. It follows a file replaced
// by rename or by a symbolic link swap, as Kubernetes does for secrets.
func (f *File) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := f.Reload()
			if err != nil {
				f.logger.Error("key file reload failed; keeping the keys loaded before", "err", err)
				continue
			}
			if changed {
				f.logger.Info("key file reloaded", "file", f.path, "active_key_id", f.ActiveKeyID())
			}
		}
	}
}

func (f *File) current() *keySet {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.keys
}

// ActiveKeyID returns the full ID of the key new data keys are wrapped with.
func (f *File) ActiveKeyID() string { return f.current().active }

// Keys lists the keys in the file, without key material.
func (f *File) Keys() []KeyInfo { return append([]KeyInfo(nil), f.current().infos...) }

// NewDataKey returns a random data key wrapped under the active key. The
// namespace is ignored: a key file has one active key for all namespaces.
func (f *File) NewDataKey(ctx context.Context, namespace string) (DataKey, error) {
	ks := f.current()
	dek := make([]byte, DataKeySize)
	if _, err := rand.Read(dek); err != nil {
		return DataKey{}, fmt.Errorf("keyring: generate data key: %w", err)
	}
	wrapped := make([]byte, wrapNonceSize, wrappedSize)
	if _, err := rand.Read(wrapped); err != nil {
		return DataKey{}, fmt.Errorf("keyring: generate nonce: %w", err)
	}
	wrapped = ks.keys[ks.active].Seal(wrapped, wrapped[:wrapNonceSize], dek, wrapAAD(ks.active))
	return DataKey{KeyID: ks.active, Wrapped: wrapped, Key: NewSecret(dek)}, nil
}

// UnwrapDataKeys unwraps data keys wrapped by any key in the file.
func (f *File) UnwrapDataKeys(ctx context.Context, namespace string, keys []WrappedKey) ([]Secret, error) {
	ks := f.current()
	out := make([]Secret, len(keys))
	for i, k := range keys {
		aead, ok := ks.keys[k.KeyID]
		if !ok {
			return nil, fmt.Errorf("key %q: %w", k.KeyID, ErrUnknownKey)
		}
		if len(k.Wrapped) != wrappedSize {
			return nil, fmt.Errorf("key %q: wrapped data key is %d bytes, want %d: %w", k.KeyID, len(k.Wrapped), wrappedSize, ErrUnwrap)
		}
		dek, err := aead.Open(nil, k.Wrapped[:wrapNonceSize], k.Wrapped[wrapNonceSize:], wrapAAD(k.KeyID))
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.KeyID, ErrUnwrap)
		}
		out[i] = NewSecret(dek)
	}
	return out, nil
}

// LegacyKey returns a static key of the Temporal samples' encryption codec
// marked "legacy": true in the file.
func (f *File) LegacyKey(ctx context.Context, keyID string) (Secret, error) {
	k, ok := f.current().legacy[keyID]
	if !ok {
		return Secret{}, fmt.Errorf("legacy key %q: %w", keyID, ErrUnknownKey)
	}
	return NewSecret(k), nil
}

// Check reports whether the keyring has a usable active key. A loaded key
// file always has one.
func (f *File) Check(ctx context.Context) error { return nil }

// CreateFile writes a new key file at path with one fresh active key. It
// refuses to overwrite an existing file. The file is created with mode 0600.
func CreateFile(path string, now time.Time) (KeyInfo, error) {
	if _, err := os.Stat(path); err == nil {
		return KeyInfo{}, fmt.Errorf("keyring: key file %s already exists", path)
	}
	f := &fileJSON{Version: fileFormatVersion}
	info, err := addKey(f, now)
	if err != nil {
		return KeyInfo{}, err
	}
	return info, writeFileAtomic(path, f)
}

// RotateFile adds a fresh key to the key file at path and makes it the
// active key. Old keys stay, so payloads sealed under them still decode.
func RotateFile(path string, now time.Time) (KeyInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	if _, err := parseKeyFile(data); err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	info, err := addKey(&f, now)
	if err != nil {
		return KeyInfo{}, err
	}
	return info, writeFileAtomic(path, &f)
}

// ListFile lists the keys of the key file at path, oldest first, without
// key material.
func ListFile(path string) ([]KeyInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	ks, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	infos := append([]KeyInfo(nil), ks.infos...)
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].Created.Before(infos[j].Created) })
	return infos, nil
}

func addKey(f *fileJSON, now time.Time) (KeyInfo, error) {
	key := make([]byte, DataKeySize)
	suffix := make([]byte, 3)
	if _, err := rand.Read(key); err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: generate key: %w", err)
	}
	if _, err := rand.Read(suffix); err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: generate key id: %w", err)
	}
	now = now.UTC().Truncate(time.Second)
	id := now.Format("2006-01-02") + "-" + hex.EncodeToString(suffix)
	f.Keys = append(f.Keys, fileKeyJSON{ID: id, Created: now, Key: base64.StdEncoding.EncodeToString(key)})
	f.Active = id
	return KeyInfo{ID: id, Created: now, Active: true}, nil
}

// writeFileAtomic writes f to a temporary file in the same directory with
// mode 0600 and renames it over path.
func writeFileAtomic(path string, f *fileJSON) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("keyring: encode key file: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".keyring-*.tmp")
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	return nil
}
