// Package subject gives each data subject (a customer, a user) of each
// namespace a key of its own, so that shredding that key erases every
// payload sealed for the subject in that namespace wherever copies of it
// live: histories, archives, backups.
//
// A [Keyring] wraps the namespace keyring: data keys for payloads without
// a subject come from it as before; data keys for a subject come from a
// [Store] and carry a key ID "subject/<store>/<handle>/<generation>", so
// decoding needs no context to find the key. The handle is a pseudonym of
// (namespace, subject ID): a keyed HMAC whose key stays in the store, so
// nobody who reads a history, an archive or a log can tell whom a payload
// belongs to, and after a shred not even who was erased. Subject IDs
// never reach key IDs, file names, Vault key names, logs or errors.
//
// Two stores ship here: [Dir] (one file per handle, for development) and
// [Vault] (one Vault transit key per handle). A store is created once
// ([InitDir], [InitVault]: `codec-server keys init-subject-store`) and has
// an identity; opening something that is not an initialised store fails,
// so a wrong folder or mount is never mistaken for a store whose keys
// were all shredded. [Shred] deletes a key and leaves a tombstone:
// afterwards payloads of the subject fail with keyring.ErrErased, sealing
// for the subject fails with keyring.ErrErased until [Readmit], and a key
// that never existed fails with keyring.ErrUnknownKey.
//
// The codec chooses the subject with codec.Options.Subject. See
// docs/ERASURE.md for what erasure by key guarantees and what it does not.
package subject

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// ErrNotInitialised means a folder or Vault mount is not an initialised
// data subject key store; `codec-server keys init-subject-store` creates
// one.
var ErrNotInitialised = errors.New("subject: not an initialised data subject key store (create one with: codec-server keys init-subject-store)")

// Store holds one key-encryption key per data subject handle.
// Implementations must be safe for concurrent use, also across processes:
// two callers creating the key of a new handle at the same moment must
// end up using the same key. Handles are keyring.ValidSubjectHandle
// strings from the store's own Handle; a store never sees a subject ID
// except in Handle.
type Store interface {
	// Name is the store's label in key IDs, e.g. "dir" or "vault".
	Name() string
	// ID is the identity the store was given when it was initialised.
	ID() string
	// Handle returns the pseudonymous handle of a canonical subject ID
	// in namespace: a keyed HMAC under a key that stays in the store.
	Handle(ctx context.Context, namespace, subject string) (string, error)
	// NewDataKey returns a fresh data key wrapped under handle's key,
	// creating the key first if the handle has none. It fails with
	// keyring.ErrErased if the handle was shredded and not re-admitted.
	// namespace is the handle's namespace (a store may name keys by it).
	NewDataKey(ctx context.Context, namespace, handle string) (keyring.DataKey, error)
	// UnwrapDataKeys unwraps keys whose IDs name this store, in as few
	// calls as the store allows. A key a tombstone records as shredded
	// fails with keyring.ErrErased, a key that never existed with
	// keyring.ErrUnknownKey; the error names the first failing key.
	UnwrapDataKeys(ctx context.Context, namespace string, keys []keyring.WrappedKey) ([]keyring.Secret, error)
	// Shred deletes handle's key for good and leaves a tombstone that
	// records the key's generation and blocks new keys for the handle.
	// It reports whether there was a key to delete; shredding a handle
	// with no key is not an error (the tombstone is left all the same).
	// A shred interrupted half-way is finished by the next one.
	Shred(ctx context.Context, namespace, handle string) (bool, error)
	// Readmit lifts the block a shred left on handle: sealing for it
	// creates a new key (a new generation); payloads of the shredded
	// generations stay erased. It reports whether the handle was blocked.
	Readmit(ctx context.Context, namespace, handle string) (bool, error)
}

// handleInput is what a store's handle HMAC covers: a label, the
// namespace (length-prefixed) and the canonical subject ID.
func handleInput(namespace, subject string) []byte {
	b := make([]byte, 0, len(handleLabel)+binary.MaxVarintLen64+len(namespace)+len(subject))
	b = append(b, handleLabel...)
	b = binary.AppendUvarint(b, uint64(len(namespace)))
	b = append(b, namespace...)
	return append(b, subject...)
}

const handleLabel = "envelope/subject-handle/v1\x00"

// handleOf turns an HMAC-SHA256 tag into a handle: its first 16 bytes in
// lowercase hex.
func handleOf(mac []byte) (string, error) {
	if len(mac) < keyring.SubjectHandleLen/2 {
		return "", fmt.Errorf("subject: handle HMAC is %d bytes, want at least %d", len(mac), keyring.SubjectHandleLen/2)
	}
	return hex.EncodeToString(mac[:keyring.SubjectHandleLen/2]), nil
}

// localHandle computes a handle with a local HMAC key (the Dir store's).
func localHandle(key []byte, namespace, subject string) string {
	m := hmac.New(sha256.New, key)
	m.Write(handleInput(namespace, subject))
	h, _ := handleOf(m.Sum(nil))
	return h
}

// Options configures a [Keyring]. All fields are optional.
type Options struct {
	// AuditLog receives one line per shred and re-admission. Default:
	// none.
	AuditLog *slog.Logger
}

// Keyring is a keyring.SubjectKeyring: namespace keys from a base keyring,
// data subject keys from a Store.
type Keyring struct {
	base  keyring.Keyring
	store Store
	opts  Options
	// handles caches handles by namespace and canonical subject: with
	// Vault each one costs a call.
	handles *lru.Cache[string, string]
	// shreds counts shreds made through this Keyring: KeyGeneration
	// adds it, so the codec drops its cached subject keys at once.
	shreds atomic.Uint64

	mu       sync.Mutex
	onShreds []func() // NotifyShred
}

var (
	_ keyring.SubjectKeyring = (*Keyring)(nil)
	_ keyring.Rotating       = (*Keyring)(nil)
	_ keyring.Checker        = (*Keyring)(nil)
	_ keyring.LegacyKeys     = (*Keyring)(nil)
	_ keyring.ShredNotifier  = (*Keyring)(nil)
)

// NotifyShred implements keyring.ShredNotifier: f runs after every shred
// made through this Keyring (codec.New registers its caches' purge).
func (k *Keyring) NotifyShred(f func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.onShreds = append(k.onShreds, f)
}

// handleCacheSize bounds the handles a Keyring remembers.
const handleCacheSize = 4096

// New returns a Keyring that takes namespace keys from base and data
// subject keys from store.
func New(base keyring.Keyring, store Store, opts Options) (*Keyring, error) {
	if base == nil || store == nil {
		return nil, fmt.Errorf("subject: nil keyring or store")
	}
	handles, err := lru.New[string, string](handleCacheSize)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	return &Keyring{base: base, store: store, opts: opts, handles: handles}, nil
}

// Store returns the Keyring's store.
func (k *Keyring) Store() Store { return k.store }

// Handle returns the handle of subject in namespace (see [Store]).
func (k *Keyring) Handle(ctx context.Context, namespace, subject string) (string, error) {
	canon, err := keyring.CanonicalSubject(subject)
	if err != nil {
		return "", fmt.Errorf("subject: %w", err)
	}
	ck := namespace + "\x00" + canon
	if h, ok := k.handles.Get(ck); ok {
		return h, nil
	}
	h, err := handle(ctx, k.store, namespace, canon)
	if err != nil {
		return "", err
	}
	k.handles.Add(ck, h)
	return h, nil
}

// handle asks store for the handle of a canonical subject and checks it.
func handle(ctx context.Context, store Store, namespace, canon string) (string, error) {
	h, err := store.Handle(ctx, namespace, canon)
	if err != nil {
		return "", err
	}
	if err := keyring.ValidSubjectHandle(h); err != nil {
		return "", fmt.Errorf("subject: %s store: %w", store.Name(), err)
	}
	return h, nil
}

// NewDataKey implements keyring.Keyring with the base keyring.
func (k *Keyring) NewDataKey(ctx context.Context, namespace string) (keyring.DataKey, error) {
	return k.base.NewDataKey(ctx, namespace)
}

// NewSubjectDataKey implements keyring.SubjectKeyring with the store: the
// key of subject in namespace.
func (k *Keyring) NewSubjectDataKey(ctx context.Context, namespace, subject string) (keyring.DataKey, error) {
	h, err := k.Handle(ctx, namespace, subject)
	if err != nil {
		return keyring.DataKey{}, err
	}
	return k.store.NewDataKey(ctx, namespace, h)
}

// UnwrapDataKeys implements keyring.Keyring: keys with a data subject key
// ID go to the store in one call, the others to the base keyring in one
// call.
func (k *Keyring) UnwrapDataKeys(ctx context.Context, namespace string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	var subj, base []int
	for i, w := range keys {
		if keyring.IsSubjectKeyID(w.KeyID) {
			subj = append(subj, i)
		} else {
			base = append(base, i)
		}
	}
	out := make([]keyring.Secret, len(keys))
	for _, part := range []struct {
		idx    []int
		unwrap func([]keyring.WrappedKey) ([]keyring.Secret, error)
	}{
		{subj, func(w []keyring.WrappedKey) ([]keyring.Secret, error) { return k.storeUnwrap(ctx, namespace, w) }},
		{base, func(w []keyring.WrappedKey) ([]keyring.Secret, error) {
			return k.base.UnwrapDataKeys(ctx, namespace, w)
		}},
	} {
		if len(part.idx) == 0 {
			continue
		}
		req := make([]keyring.WrappedKey, len(part.idx))
		for j, i := range part.idx {
			req[j] = keys[i]
		}
		secrets, err := part.unwrap(req)
		if err != nil {
			// Name the failing key by its index in this call's keys.
			at := part.idx[0]
			if j, ok := keyring.FailedKey(err); ok && j >= 0 && j < len(part.idx) {
				at = part.idx[j]
			}
			var ke *keyring.KeyError
			if errors.As(err, &ke) {
				err = ke.Err
			}
			return nil, &keyring.KeyError{Index: at, Err: err}
		}
		if len(secrets) != len(req) {
			return nil, fmt.Errorf("subject: store returned %d data keys, want %d", len(secrets), len(req))
		}
		for j, i := range part.idx {
			out[i] = secrets[j]
		}
	}
	return out, nil
}

// storeUnwrap refuses subject key IDs of another store before asking the
// store: they name keys this keyring cannot hold.
func (k *Keyring) storeUnwrap(ctx context.Context, namespace string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	prefix := keyring.SubjectKeyIDPrefix + k.store.Name() + "/"
	for i, w := range keys {
		if !strings.HasPrefix(w.KeyID, prefix) {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("subject: key %q is not in the %s store: %w", truncate.To(w.KeyID, maxKeyIDInError), k.store.Name(), keyring.ErrUnknownKey)}
		}
	}
	return k.store.UnwrapDataKeys(ctx, namespace, keys)
}

// Request names the data subject a shred or re-admission is for, and what
// its audit line records.
type Request struct {
	// Namespace and Subject name the data subject: its key in that
	// namespace only. Both are required.
	Namespace, Subject string
	// By names who asked (e.g. $USER); Reference is the operator's
	// reference for the request, such as a ticket number.
	By, Reference string
	// RecordSubject writes the subject ID into the audit line. Off by
	// default: the audit line then names only the handle, which nobody
	// can link to the person without the store.
	RecordSubject bool
}

// Shred deletes the key of req's subject in req's namespace (see the
// package function [Shred]) and makes this Keyring's codecs drop their
// cached subject keys at once (KeyGeneration changes). Other processes
// drop theirs within codec.Options.SubjectKeyMaxAge.
func (k *Keyring) Shred(ctx context.Context, req Request) (handle string, existed bool, err error) {
	h, existed, err := Shred(ctx, k.store, req, k.opts.AuditLog)
	k.shreds.Add(1)
	k.mu.Lock()
	fs := append([]func(){}, k.onShreds...)
	k.mu.Unlock()
	for _, f := range fs {
		f()
	}
	return h, existed, err
}

// Readmit lifts the block a shred left on req's subject (see the package
// function [Readmit]).
func (k *Keyring) Readmit(ctx context.Context, req Request) (handle string, blocked bool, err error) {
	return Readmit(ctx, k.store, req, k.opts.AuditLog)
}

// Shred deletes the key of req.Subject in req.Namespace from store and
// leaves a tombstone, and, if audit is not nil, writes an audit line "data
// subject key shredded" with the handle, namespace, store, store ID,
// reference, result (shredded, no_key or failed), by, the time, and the
// subject ID only if req.RecordSubject. It returns the handle and whether
// there was a key; shredding a subject with no key is not an error.
func Shred(ctx context.Context, store Store, req Request, audit *slog.Logger) (string, bool, error) {
	return operate(ctx, store, req, audit, "data subject key shredded", "shred", "shredded", "no_key", store.Shred)
}

// Readmit lifts the block a shred left on req.Subject in req.Namespace,
// so that sealing for the subject works again (under a new key), and
// writes an audit line "data subject re-admitted" like [Shred]'s (result
// readmitted, not_blocked or failed).
func Readmit(ctx context.Context, store Store, req Request, audit *slog.Logger) (string, bool, error) {
	return operate(ctx, store, req, audit, "data subject re-admitted", "readmit", "readmitted", "not_blocked", store.Readmit)
}

func operate(ctx context.Context, store Store, req Request, audit *slog.Logger, msg, event, yes, no string, op func(context.Context, string, string) (bool, error)) (string, bool, error) {
	if req.Namespace == "" {
		return "", false, errors.New("subject: a namespace is required: data subject keys belong to a namespace")
	}
	canon, err := keyring.CanonicalSubject(req.Subject)
	if err != nil {
		return "", false, fmt.Errorf("subject: %w", err)
	}
	h, err := handle(ctx, store, req.Namespace, canon)
	if err != nil {
		return "", false, err
	}
	done, err := op(ctx, req.Namespace, h)
	if audit != nil {
		result := yes
		switch {
		case err != nil:
			result = "failed"
		case !done:
			result = no
		}
		attrs := []slog.Attr{
			slog.String("event", event),
			slog.String("handle", h),
			slog.String("namespace", req.Namespace),
			slog.String("store", store.Name()),
			slog.String("store_id", store.ID()),
			slog.String("reference", req.Reference),
			slog.String("result", result),
			slog.String("by", req.By),
			slog.Time("at", time.Now().UTC()),
		}
		if req.RecordSubject {
			attrs = append(attrs, slog.String("subject_id", canon))
		}
		audit.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
	}
	if err != nil {
		return h, false, fmt.Errorf("subject: %s handle %s: %w", event, h, err)
	}
	return h, done, nil
}

// KeyGeneration implements keyring.Rotating with the base keyring's
// generation (0 if it does not rotate) plus the number of shreds made
// through this Keyring, so the codec notices a rotation of the namespace
// keys and drops its cached subject keys after a shred. Subject keys
// never rotate.
func (k *Keyring) KeyGeneration() uint64 {
	g := k.shreds.Load()
	if r, ok := k.base.(keyring.Rotating); ok {
		g += r.KeyGeneration()
	}
	return g
}

// Check implements keyring.Checker with the base keyring, if it has one.
func (k *Keyring) Check(ctx context.Context) error {
	if c, ok := k.base.(keyring.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// LegacyKey implements keyring.LegacyKeys with the base keyring, if it
// has them.
func (k *Keyring) LegacyKey(ctx context.Context, keyID string) (keyring.Secret, error) {
	if l, ok := k.base.(keyring.LegacyKeys); ok {
		return l.LegacyKey(ctx, keyID)
	}
	return keyring.Secret{}, fmt.Errorf("subject: legacy key %q: %w", truncate.To(keyID, maxKeyIDInError), keyring.ErrUnknownKey)
}

// parseKeyID splits "subject/<store>/<handle>/<generation>".
func parseKeyID(store, keyID string) (handle, gen string, err error) {
	rest, ok := strings.CutPrefix(keyID, keyring.SubjectKeyIDPrefix+store+"/")
	if ok {
		handle, gen, ok = strings.Cut(rest, "/")
	}
	if !ok || !validGeneration(gen) || keyring.ValidSubjectHandle(handle) != nil {
		return "", "", fmt.Errorf("subject: malformed %s key ID %q: %w", store, truncate.To(keyID, maxKeyIDInError), keyring.ErrUnknownKey)
	}
	return handle, gen, nil
}

// validGeneration reports whether gen is 16 lowercase hex digits.
func validGeneration(gen string) bool {
	if len(gen) != 16 {
		return false
	}
	_, err := hex.DecodeString(gen)
	return err == nil && strings.ToLower(gen) == gen
}

func keyID(store, handle, gen string) string {
	return keyring.SubjectKeyIDPrefix + store + "/" + handle + "/" + gen
}

// maxKeyIDInError is how many bytes of a caller-supplied key ID an error
// message shows.
const maxKeyIDInError = 160
