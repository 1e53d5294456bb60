package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// FileKeyIDPrefix starts the key ID of every key from a key file, so IDs
// from different keyrings never collide.
const FileKeyIDPrefix = "local/"

const (
	// fileFormatVersion is the version this package writes. Version 1
	// files (no promoted or retired fields) are still read; commands that
	// change a file write version 2.
	fileFormatVersion = 2
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
	// Promoted is when the key last became the active key (version 2);
	// absent for a key that never was.
	Promoted *time.Time `json:"promoted,omitempty"`
	// Retired is when the key was retired (version 2): it no longer
	// unwraps data keys or decodes payloads. Its material stays in the
	// file until an operator deletes the entry.
	Retired *time.Time `json:"retired,omitempty"`
}

// canonicalFieldNames are the field names of a key file, at any level.
var canonicalFieldNames = []string{"version", "active", "keys", "id", "created", "key", "legacy", "promoted", "retired"}

// KeyInfo describes a key in a key file without its key material.
type KeyInfo struct {
	ID      string // the ID inside the file, without FileKeyIDPrefix
	Created time.Time
	Active  bool
	Legacy  bool      // a samples-codec static key, for decoding only
	Retired time.Time // when the key was retired; zero if it was not
	// Promoted is when the key last became active; zero if never. Keys of
	// version 1 files count as promoted when they were created.
	Promoted time.Time
}

// FullID returns the key ID payloads carry: FileKeyIDPrefix and the ID, or
// the ID alone for a legacy key.
func (k KeyInfo) FullID() string {
	if k.Legacy {
		return k.ID
	}
	return FileKeyIDPrefix + k.ID
}

// keySet is one successfully parsed key file.
type keySet struct {
	active  string // full key ID, with prefix
	keys    map[string]cipher.AEAD
	legacy  map[string][]byte // static sample-codec keys by their plain ID
	retired map[string]bool   // full IDs (legacy ones without prefix) of retired keys
	infos   []KeyInfo
	digest  [sha256.Size]byte // of the file's bytes, to notice changes
	index   fileIndex         // blind-index keys (indexkeys.go)
}

// parseKeyFile parses and validates a key file. Errors never contain key
// material.
func parseKeyFile(data []byte) (*keySet, error) {
	f, err := decodeKeyFile(data)
	if err != nil {
		return nil, err
	}
	ks := &keySet{keys: make(map[string]cipher.AEAD, len(f.Keys)), legacy: make(map[string][]byte), retired: make(map[string]bool)}
	seen := make(map[string]bool, len(f.Keys))
	for i, k := range f.Keys {
		if k.Legacy {
			if err := validLegacyKeyID(k.ID); err != nil {
				return nil, fmt.Errorf("key %d: %w", i, err)
			}
		} else if err := validKeyID(k.ID); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("key %d: duplicate id %q", i, k.ID)
		}
		seen[k.ID] = true
		if f.Version < 2 && (k.Promoted != nil || k.Retired != nil) {
			return nil, fmt.Errorf("key %q: \"promoted\" and \"retired\" need version 2", k.ID)
		}
		raw, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil {
			return nil, fmt.Errorf("key %q: key is not valid base64", k.ID)
		}
		if len(raw) != DataKeySize {
			return nil, fmt.Errorf("key %q: key is %d bytes, want %d", k.ID, len(raw), DataKeySize)
		}
		info := KeyInfo{ID: k.ID, Created: k.Created, Active: !k.Legacy && k.ID == f.Active, Legacy: k.Legacy}
		switch {
		case k.Promoted != nil:
			info.Promoted = *k.Promoted
		case f.Version < 2 && !k.Legacy:
			info.Promoted = k.Created // version 1 made every new key active
		}
		if k.Retired != nil {
			info.Retired = *k.Retired
			ks.retired[info.FullID()] = true
		}
		ks.infos = append(ks.infos, info)
		switch {
		case k.Retired != nil:
		case k.Legacy:
			ks.legacy[k.ID] = raw
		default:
			aead, err := newGCM(raw)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k.ID, err)
			}
			ks.keys[FileKeyIDPrefix+k.ID] = aead
			if err := ks.addIndexKey(FileKeyIDPrefix+k.ID, raw); err != nil {
				return nil, err
			}
		}
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
		if ks.retired[FileKeyIDPrefix+f.Active] {
			return nil, fmt.Errorf("active key id %q is retired", f.Active)
		}
		return nil, fmt.Errorf("active key id %q is not among the keys", f.Active)
	}
	ks.active = FileKeyIDPrefix + f.Active
	ks.digest = sha256.Sum256(data)
	return ks, nil
}

// decodeKeyFile decodes a key file strictly: bounded size, no unknown,
// duplicate or case-variant field names at any level (Go's decoder would
// take the last of two and ignore case; other readers take the first), a
// known version and at least one key.
func decodeKeyFile(data []byte) (*fileJSON, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("file is %d bytes, more than the %d allowed", len(data), maxFileSize)
	}
	if err := checkFieldNames(data); err != nil {
		return nil, err
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
	if f.Version != 1 && f.Version != fileFormatVersion {
		return nil, fmt.Errorf("unsupported version %d, want 1 or %d", f.Version, fileFormatVersion)
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("no keys")
	}
	return &f, nil
}

// checkFieldNames walks the JSON document and refuses an object with two
// fields whose names are equal ignoring case, and a field name that differs
// only in case from a key file field ("KEY" for "key"). Names that are not
// a key file's are not quoted: they could be key material in the wrong
// place.
func checkFieldNames(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 16 {
			return errors.New("malformed JSON: nested too deeply")
		}
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("malformed JSON: %s", jsonErrorReason(err))
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '[':
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		case '{':
			names := make(map[string]bool)
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return fmt.Errorf("malformed JSON: %s", jsonErrorReason(err))
				}
				name, _ := tok.(string)
				folded := strings.ToLower(name)
				canonical := ""
				for _, c := range canonicalFieldNames {
					if strings.EqualFold(c, name) {
						canonical = c
					}
				}
				switch {
				case canonical != "" && name != canonical:
					return fmt.Errorf("field %q must be spelled %q", name, canonical)
				case names[folded] && canonical != "":
					return fmt.Errorf("duplicate field %q", canonical)
				case names[folded]:
					return errors.New("duplicate field name")
				}
				names[folded] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		if err != nil {
			return fmt.Errorf("malformed JSON: %s", jsonErrorReason(err))
		}
		return nil
	}
	return walk(0)
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
		// Quote a short name (a typo); a long one may be a pasted key.
		if name := strings.TrimPrefix(err.Error(), "json: unknown field "); len(name) > 22 {
			return fmt.Sprintf("unknown field (a %d-byte name, not quoted: it may be key material); fields are %s", len(name)-2, strings.Join(canonicalFieldNames, ", "))
		}
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

// validLegacyKeyID checks the ID of a samples-codec static key: the
// samples' own IDs, so the empty ID (their default) is allowed.
func validLegacyKeyID(id string) error {
	if id == "" {
		return nil
	}
	return validKeyID(id)
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

// DefaultReloadFailuresUnready is how many key file reloads in a row must
// fail before [File.Check] reports the keyring not ready.
const DefaultReloadFailuresUnready = 3

// FileOptions configures [OpenFile]. All fields are optional.
type FileOptions struct {
	// Logger receives warnings (loose file permissions, failed reloads).
	// Default: slog.Default().
	Logger *slog.Logger

	// OnReload, if set, is called after every reload attempt with its
	// error (nil when the file was read, changed or not). Metrics are what
	// it is for; it must be fast. Default: none.
	OnReload func(err error)

	// ReloadFailuresUnready is how many reloads in a row must fail before
	// Check reports an error, so /readyz stops sending traffic to a server
	// that cannot see the current key file. Default:
	// DefaultReloadFailuresUnready.
	ReloadFailuresUnready int
}

// File is a keyring read from a local JSON key file. It is safe for
// concurrent use. Key IDs are FileKeyIDPrefix followed by the ID in the file.
type File struct {
	path     string
	logger   *slog.Logger
	onReload func(error)
	unready  int

	mu   sync.RWMutex
	keys *keySet

	// reloadMu serialises reloads, so two at once cannot install an
	// older file after a newer one.
	reloadMu sync.Mutex

	gen      atomic.Uint64 // counts changes of the loaded file
	failures atomic.Int64  // reloads failed in a row
	errMu    sync.Mutex
	lastErr  error // the last reload error, while failures > 0
}

var (
	_ Keyring    = (*File)(nil)
	_ LegacyKeys = (*File)(nil)
	_ Checker    = (*File)(nil)
	_ Rotating   = (*File)(nil)
)

// OpenFile loads the key file at path. It refuses a file that anyone but
// its owner can write, and warns through the logger when the file is
// readable by others. Call [File.Reload] or [File.Watch] to pick up changes.
func OpenFile(path string, opts FileOptions) (*File, error) {
	f := &File{path: path, logger: opts.Logger, onReload: opts.OnReload, unready: opts.ReloadFailuresUnready}
	if f.logger == nil {
		f.logger = slog.Default()
	}
	if f.unready <= 0 {
		f.unready = DefaultReloadFailuresUnready
	}
	ks, err := f.load()
	if err != nil {
		return nil, err
	}
	f.keys = ks
	return f, nil
}

func (f *File) load() (*keySet, error) {
	// One open: the mode checked is the mode of the file read, even if the
	// path is replaced in between.
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("keyring: key file %s is a directory", f.path)
	}
	if err := checkNotShared(fi); err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	if looselyReadable(fi) {
		f.logger.Warn("key file is readable by group or others; restrict it with chmod 600",
			"file", f.path, "mode", fi.Mode().Perm().String())
	}
	// Read at most one byte more than allowed: parseKeyFile refuses it,
	// and a huge file never sits in memory.
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	ks, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	return ks, nil
}

// checkNotShared refuses a key file that anyone but its owner can write
// (group or others): whoever can write it can make every new payload
// sealed under a key they know.
func checkNotShared(fi os.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("mode %s lets group or others write it; restrict it with chmod 600 (or 0640/0440)", perm)
	}
	return nil
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
// use and the error says why the new file was refused; after
// FileOptions.ReloadFailuresUnready failures in a row, Check fails too. It
// reports whether the keys changed.
func (f *File) Reload() (changed bool, err error) {
	changed, err = f.reload()
	f.errMu.Lock()
	if err != nil {
		f.failures.Add(1)
		f.lastErr = err
	} else {
		f.failures.Store(0)
		f.lastErr = nil
	}
	f.errMu.Unlock()
	if f.onReload != nil {
		f.onReload(err)
	}
	return changed, err
}

func (f *File) reload() (bool, error) {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	ks, err := f.load()
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys.digest == ks.digest {
		return false, nil
	}
	f.keys = ks
	f.gen.Add(1)
	return true, nil
}

// ReloadFailures returns how many reloads in a row have failed (0 after a
// successful one).
func (f *File) ReloadFailures() int { return int(f.failures.Load()) }

// KeyGeneration implements [Rotating]: it changes whenever a reload loads
// a changed file.
func (f *File) KeyGeneration() uint64 { return f.gen.Load() }

// Watch reloads the key file every interval until ctx is done, logging
// every refused file and changes of the active key. It follows a file
// replaced by rename or by a symbolic link swap, as Kubernetes does for
// secrets.
func (f *File) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			before := f.ActiveKeyID()
			changed, err := f.Reload()
			if err != nil {
				f.logger.Error("key file reload failed; keeping the keys loaded before", "file", f.path,
					"failures_in_a_row", f.ReloadFailures(), "err", err)
				continue
			}
			if changed {
				f.logger.Info("key file reloaded", "file", f.path, "active_key_id", f.ActiveKeyID(), "active_key_changed", before != f.ActiveKeyID())
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

// UnwrapDataKeys unwraps data keys wrapped by any key in the file that is
// not retired. An error names the failing key with a [KeyError].
func (f *File) UnwrapDataKeys(ctx context.Context, namespace string, keys []WrappedKey) ([]Secret, error) {
	ks := f.current()
	out := make([]Secret, len(keys))
	for i, k := range keys {
		aead, ok := ks.keys[k.KeyID]
		if !ok {
			if ks.retired[k.KeyID] {
				return nil, &KeyError{Index: i, Err: fmt.Errorf("key %q is retired: %w", k.KeyID, ErrUnknownKey)}
			}
			return nil, &KeyError{Index: i, Err: fmt.Errorf("key %q: %w", k.KeyID, ErrUnknownKey)}
		}
		if len(k.Wrapped) != wrappedSize {
			return nil, &KeyError{Index: i, Err: fmt.Errorf("key %q: wrapped data key is %d bytes, want %d: %w", k.KeyID, len(k.Wrapped), wrappedSize, ErrUnwrap)}
		}
		dek, err := aead.Open(nil, k.Wrapped[:wrapNonceSize], k.Wrapped[wrapNonceSize:], wrapAAD(k.KeyID))
		if err != nil {
			return nil, &KeyError{Index: i, Err: fmt.Errorf("key %q: %w", k.KeyID, ErrUnwrap)}
		}
		out[i] = NewSecret(dek)
	}
	return out, nil
}

// LegacyKey returns a copy of a static key of the Temporal samples'
// encryption codec marked "legacy": true in the file.
func (f *File) LegacyKey(ctx context.Context, keyID string) (Secret, error) {
	ks := f.current()
	k, ok := ks.legacy[keyID]
	if !ok {
		if ks.retired[keyID] {
			return Secret{}, fmt.Errorf("legacy key %q is retired: %w", keyID, ErrUnknownKey)
		}
		// The ID comes from a payload: cut it short, it may be a key
		// pasted in the wrong place.
		if len(keyID) > 16 {
			keyID = keyID[:16] + "..."
		}
		return Secret{}, fmt.Errorf("legacy key %q: %w", keyID, ErrUnknownKey)
	}
	return NewSecret(bytes.Clone(k)), nil
}

// Check reports whether the keyring is usable: it fails once
// FileOptions.ReloadFailuresUnready reloads in a row have failed, because
// the server may then be sealing under a key the operator has replaced.
func (f *File) Check(ctx context.Context) error {
	n := f.failures.Load()
	if n < int64(f.unready) {
		return nil
	}
	f.errMu.Lock()
	err := f.lastErr
	f.errMu.Unlock()
	if err == nil {
		return nil
	}
	return fmt.Errorf("keyring: key file %s: %d reloads in a row failed: %w", f.path, n, err)
}

// ErrKeyInUse means a key file command was refused because the key may
// still be sealing new payloads somewhere (see [RetireKey]).
var ErrKeyInUse = errors.New("keyring: key may still be in use")

// CreateFile writes a new key file at path with one fresh active key. It
// refuses to overwrite an existing file. The file is created with mode 0600.
func CreateFile(path string, now time.Time) (KeyInfo, error) {
	if _, err := os.Lstat(path); err == nil {
		return KeyInfo{}, fmt.Errorf("keyring: key file %s already exists", path)
	}
	f := &fileJSON{Version: fileFormatVersion}
	info, err := addKey(f, now)
	if err != nil {
		return KeyInfo{}, err
	}
	promote(f, info.ID, now)
	info.Active, info.Promoted = true, now.UTC().Truncate(time.Second)
	return info, writeFileAtomic(path, f, nil)
}

// RotateFile adds a fresh key to the key file at path and makes it the
// active key in one step. Old keys stay, so payloads sealed under them still
// decode. Servers that have not reloaded the file yet cannot open payloads
// sealed under the new key until they do: where several processes read
// copies of the file, use [AddKey] and [PromoteKey] instead.
func RotateFile(path string, now time.Time) (KeyInfo, error) {
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		var err error
		if info, err = addKey(f, now); err != nil {
			return err
		}
		promote(f, info.ID, now)
		info.Active, info.Promoted = true, now.UTC().Truncate(time.Second)
		return nil
	})
	return info, err
}

// AddKey adds a fresh key to the key file at path without making it active:
// it only decrypts until [PromoteKey] makes it active. Distribute the file
// to every server and worker before promoting the key.
func AddKey(path string, now time.Time) (KeyInfo, error) {
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		var err error
		info, err = addKey(f, now)
		return err
	})
	return info, err
}

// PromoteKey makes the key id (as in the file, without FileKeyIDPrefix) of
// the key file at path the active key. It refuses legacy and retired keys.
func PromoteKey(path, id string, now time.Time) (KeyInfo, error) {
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		k := findKey(f, id)
		switch {
		case k == nil:
			return fmt.Errorf("no key %q", id)
		case k.Legacy:
			return fmt.Errorf("key %q is a legacy key, which only decodes", id)
		case k.Retired != nil:
			return fmt.Errorf("key %q is retired", id)
		case f.Active == id:
			return fmt.Errorf("key %q is already active", id)
		}
		promote(f, id, now)
		info = KeyInfo{ID: id, Created: k.Created, Active: true, Promoted: *k.Promoted}
		return nil
	})
	return info, err
}

// RetireOptions configures [RetireKey].
type RetireOptions struct {
	// Window is how long after a key stopped being active it may still
	// seal new payloads: the codec's Options.DataKeyMaxAge plus the key
	// file reload interval of every process that reads the file.
	Window time.Duration
	// Force retires a key that stopped being active less than Window ago.
	// Only use this if every process that reads the file has reloaded it.
	Force bool
}

// RetireKey marks the key id of the key file at path retired: it no longer
// unwraps data keys, so payloads sealed under it stop decoding (their
// histories can no longer be read) until the mark is removed. It refuses
// the active key, and with an error wrapping [ErrKeyInUse] a key that was
// active less than opts.Window ago, unless opts.Force. A key that never was
// active (added, or legacy) can be retired at once. The key material stays
// in the file.
func RetireKey(path, id string, now time.Time, opts RetireOptions) (KeyInfo, error) {
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		k := findKey(f, id)
		switch {
		case k == nil:
			return fmt.Errorf("no key %q", id)
		case k.Retired != nil:
			return fmt.Errorf("key %q is already retired", id)
		case !k.Legacy && f.Active == id:
			return fmt.Errorf("key %q is the active key; promote another key first: %w", id, ErrKeyInUse)
		}
		if end, ok := activeUntil(f, k, now); ok && !opts.Force {
			if left := end.Add(opts.Window).Sub(now); left > 0 {
				return fmt.Errorf("key %q was active until %s and may still seal payloads for %s (data key max age + reload interval); retry later or use --force: %w",
					id, end.UTC().Format(time.RFC3339), left.Round(time.Second), ErrKeyInUse)
			}
		}
		t := now.UTC().Truncate(time.Second)
		k.Retired = &t
		info = KeyInfo{ID: id, Created: k.Created, Legacy: k.Legacy, Retired: t}
		if k.Promoted != nil {
			info.Promoted = *k.Promoted
		}
		return nil
	})
	return info, err
}

// activeUntil returns when key k stopped being active: when the first key
// promoted after k's last promotion was promoted. ok is false for a key
// that never was active.
func activeUntil(f *fileJSON, k *fileKeyJSON, now time.Time) (end time.Time, ok bool) {
	if k.Legacy || k.Promoted == nil {
		return time.Time{}, false
	}
	for _, o := range f.Keys {
		if o.Promoted != nil && o.Promoted.After(*k.Promoted) && (end.IsZero() || o.Promoted.Before(end)) {
			end = *o.Promoted
		}
	}
	if end.IsZero() {
		// No later promotion recorded (clock skew): count it active until now.
		end = now
	}
	return end, true
}

// AddLegacyKey adds a static key of the Temporal samples' encryption codec
// under the samples' key ID id (the empty ID, the samples' default,
// included) to the key file at path. It only decodes payloads the samples
// sealed under that ID.
func AddLegacyKey(path, id string, key []byte, now time.Time) (KeyInfo, error) {
	if len(key) != DataKeySize {
		return KeyInfo{}, fmt.Errorf("keyring: legacy key is %d bytes, want %d", len(key), DataKeySize)
	}
	if err := validLegacyKeyID(id); err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: legacy key id: %w", err)
	}
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		if findKey(f, id) != nil {
			return fmt.Errorf("key id %q is already in the file", id)
		}
		t := now.UTC().Truncate(time.Second)
		f.Keys = append(f.Keys, fileKeyJSON{ID: id, Created: t, Key: base64.StdEncoding.EncodeToString(key), Legacy: true})
		info = KeyInfo{ID: id, Created: t, Legacy: true}
		return nil
	})
	return info, err
}

func findKey(f *fileJSON, id string) *fileKeyJSON {
	for i := range f.Keys {
		if f.Keys[i].ID == id {
			return &f.Keys[i]
		}
	}
	return nil
}

func promote(f *fileJSON, id string, now time.Time) {
	t := now.UTC().Truncate(time.Second)
	findKey(f, id).Promoted = &t
	f.Active = id
}

// updateFile reads and validates the key file at path, upgrades a version
// 1 file to version 2, applies fn, validates the result and writes it back
// atomically with the file's owner, group and mode. It refuses a file that
// anyone but its owner can write.
func updateFile(path string, fn func(*fileJSON) error) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	unlock, err := lockKeyFile(real)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: lock: %w", path, err)
	}
	defer unlock()
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	if err := checkNotShared(fi); err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	data, err := os.ReadFile(real)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	if _, err := parseKeyFile(data); err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	f, err := decodeKeyFile(data)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	if f.Version == 1 {
		// Version 1 made every key active when it was created.
		for i := range f.Keys {
			if k := &f.Keys[i]; !k.Legacy {
				t := k.Created
				k.Promoted = &t
			}
		}
		f.Version = fileFormatVersion
	}
	if err := fn(f); err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	return writeFileAtomic(real, f, fi)
}

// lockKeyFile takes an exclusive flock on the key file at path, so that key
// file commands run at the same time apply one after the other instead of
// each writing back its own copy (which loses the other's key). Writes
// replace the file by rename, so after locking it checks that path still
// names the locked file and otherwise locks the new one.
func lockKeyFile(path string) (unlock func(), err error) {
	for {
		fd, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX); err != nil {
			fd.Close()
			return nil, err
		}
		locked, err1 := fd.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(locked, now) {
			return func() { fd.Close() }, nil
		}
		fd.Close()
		if err2 != nil {
			return nil, err2
		}
	}
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
	if findKey(f, id) != nil {
		return KeyInfo{}, errors.New("keyring: generated key id is taken; try again")
	}
	f.Keys = append(f.Keys, fileKeyJSON{ID: id, Created: now, Key: base64.StdEncoding.EncodeToString(key)})
	return KeyInfo{ID: id, Created: now}, nil
}

// writeFileAtomic writes f to a temporary file in the same directory and
// renames it over path. The new file gets the mode, owner and group of old
// (the file it replaces), or mode 0600 when old is nil; if the owner or
// group cannot be kept, nothing is written.
func writeFileAtomic(path string, f *fileJSON, old os.FileInfo) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("keyring: encode key file: %w", err)
	}
	data = append(data, '\n')
	if _, err := parseKeyFile(data); err != nil {
		return fmt.Errorf("keyring: refusing to write an invalid key file: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".keyring-*.tmp")
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	mode := os.FileMode(0o600)
	if old != nil {
		mode = old.Mode().Perm()
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			if err := keepOwner(tmp, int(st.Uid), int(st.Gid)); err != nil {
				tmp.Close()
				return fmt.Errorf("keyring: key file %s: cannot keep its owner %d and group %d (run as its owner or root): %w", path, st.Uid, st.Gid, err)
			}
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if old == nil {
		// A new file: link, which fails if path appeared since the
		// caller looked, where rename would replace it.
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("keyring: key file %s already exists", path)
			}
			return fmt.Errorf("keyring: %w", err)
		}
	} else if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	// Make the new directory entry durable, so a crash cannot bring back
	// the old file after a process has sealed under the new one.
	return syncDir(dir)
}

// syncDir fsyncs the directory dir.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keyring: sync %s: %w", dir, err)
	}
	return nil
}

// keepOwner gives tmp the owner uid and group gid unless it has them.
func keepOwner(tmp *os.File, uid, gid int) error {
	fi, err := tmp.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	return tmp.Chown(uid, gid)
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
