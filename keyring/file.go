package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelopecodec/envelope/internal/ownerfile"
	"github.com/envelopecodec/envelope/internal/reload"
	"github.com/envelopecodec/envelope/internal/truncate"
)

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
// its owner can write, that another user than the process's own (or root)
// owns, or whose folder lets others replace it (internal/ownerfile), and
// warns through the logger when the file is readable by others. A reload
// refuses such a file too and keeps the keys loaded before. Call [File.Reload] or [File.Watch] to pick up changes.
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
	// One open: the mode and owner checked are those of the file read,
	// even if the path is replaced in between. Read at most one byte more
	// than allowed: parseKeyFile refuses it, and a huge file never sits in
	// memory.
	data, fi, err := ownerfile.Read(f.path, maxFileSize+1, ownerfile.Check)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	if ownerfile.LooselyReadable(fi) {
		f.logger.Warn("key file is readable by group or others; restrict it with chmod 600",
			"file", f.path, "mode", fi.Mode().Perm().String())
	}
	ks, err := parseKeyFile(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", f.path, err)
	}
	return ks, nil
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
	reload.Every(ctx, interval, func(time.Time) {
		before := f.ActiveKeyID()
		changed, err := f.Reload()
		if err != nil {
			f.logger.Error("key file reload failed; keeping the keys loaded before", "file", f.path,
				"failures_in_a_row", f.ReloadFailures(), "err", err)
			return
		}
		if changed {
			f.logger.Info("key file reloaded", "file", f.path, "active_key_id", f.ActiveKeyID(), "active_key_changed", before != f.ActiveKeyID())
		}
	})
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
		return Secret{}, fmt.Errorf("legacy key %q: %w", truncate.To(keyID, 16), ErrUnknownKey)
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
