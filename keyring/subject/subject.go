// Package subject gives each data subject (a customer, a user) a key of its
// own, so that shredding that key erases every payload sealed for the
// subject wherever copies of it live: histories, archives, backups.
//
// A [Keyring] wraps the namespace keyring: data keys for payloads without
// a subject come from it as before; data keys for a subject come from a
// [Store] and carry a key ID "subject/<store>/<subject>/<generation>", so
// decoding needs no context to find the key. Two stores ship here: [Dir]
// (one file per subject, for development) and [Vault] (one Vault transit
// key per subject). [Keyring.Shred] deletes a subject's key; afterwards
// every payload of that subject fails with keyring.ErrErased.
//
// The codec chooses the subject with codec.Options.Subject. See
// docs/ERASURE.md for what erasure by key guarantees and what it does not.
package subject

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// Store holds one key-encryption key per data subject. Implementations
// must be safe for concurrent use, also across processes: two callers
// creating the key of a new subject at the same moment must end up using
// the same key.
type Store interface {
	// Name is the store's label in key IDs, e.g. "dir" or "vault".
	Name() string
	// NewDataKey returns a fresh data key wrapped under subject's key,
	// creating the key first if the subject has none.
	NewDataKey(ctx context.Context, subject string) (keyring.DataKey, error)
	// UnwrapDataKeys unwraps keys whose IDs name this store, in as few
	// calls as the store allows. A key of a shredded subject fails with
	// keyring.ErrErased; the error names the first failing key.
	UnwrapDataKeys(ctx context.Context, keys []keyring.WrappedKey) ([]keyring.Secret, error)
	// Shred deletes subject's key for good. It reports whether there was
	// a key to delete; shredding an unknown subject is not an error.
	Shred(ctx context.Context, subject string) (bool, error)
}

// Options configures a [Keyring]. All fields are optional.
type Options struct {
	// AuditLog receives one line per shred. Default: none.
	AuditLog *slog.Logger
}

// Keyring is a keyring.SubjectKeyring: namespace keys from a base keyring,
// data subject keys from a Store.
type Keyring struct {
	base  keyring.Keyring
	store Store
	opts  Options
}

var (
	_ keyring.SubjectKeyring = (*Keyring)(nil)
	_ keyring.Rotating       = (*Keyring)(nil)
	_ keyring.Checker        = (*Keyring)(nil)
	_ keyring.LegacyKeys     = (*Keyring)(nil)
)

// New returns a Keyring that takes namespace keys from base and data
// subject keys from store.
func New(base keyring.Keyring, store Store, opts Options) (*Keyring, error) {
	if base == nil || store == nil {
		return nil, fmt.Errorf("subject: nil keyring or store")
	}
	return &Keyring{base: base, store: store, opts: opts}, nil
}

// NewDataKey implements keyring.Keyring with the base keyring.
func (k *Keyring) NewDataKey(ctx context.Context, namespace string) (keyring.DataKey, error) {
	return k.base.NewDataKey(ctx, namespace)
}

// NewSubjectDataKey implements keyring.SubjectKeyring with the store.
func (k *Keyring) NewSubjectDataKey(ctx context.Context, namespace, subject string) (keyring.DataKey, error) {
	if err := keyring.ValidSubject(subject); err != nil {
		return keyring.DataKey{}, fmt.Errorf("subject: %w", err)
	}
	return k.store.NewDataKey(ctx, subject)
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
		{subj, func(w []keyring.WrappedKey) ([]keyring.Secret, error) { return k.storeUnwrap(ctx, w) }},
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
func (k *Keyring) storeUnwrap(ctx context.Context, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	prefix := keyring.SubjectKeyIDPrefix + k.store.Name() + "/"
	for _, w := range keys {
		if !strings.HasPrefix(w.KeyID, prefix) {
			return nil, fmt.Errorf("subject: key %q is not in the %s store: %w", truncate(w.KeyID), k.store.Name(), keyring.ErrUnknownKey)
		}
	}
	return k.store.UnwrapDataKeys(ctx, keys)
}

// Shred deletes subject's key in the store (see the package function
// [Shred]). Afterwards payloads sealed for the subject fail with
// keyring.ErrErased, in this process and every other one once their
// caches expire (codec.Options.SubjectKeyMaxAge). by names who asked, for
// the audit line.
func (k *Keyring) Shred(ctx context.Context, subject, by string) (bool, error) {
	return Shred(ctx, k.store, subject, by, k.opts.AuditLog)
}

// Shred deletes subject's key in store and, if audit is not nil, writes an
// audit line "data subject key shredded" with the subject, the store, the
// result (shredded, no_key or failed), by and the time. It reports
// whether there was a key; shredding a subject with no key is not an
// error.
func Shred(ctx context.Context, store Store, subject, by string, audit *slog.Logger) (bool, error) {
	if err := keyring.ValidSubject(subject); err != nil {
		return false, fmt.Errorf("subject: %w", err)
	}
	existed, err := store.Shred(ctx, subject)
	if audit != nil {
		result := "shredded"
		switch {
		case err != nil:
			result = "failed"
		case !existed:
			result = "no_key"
		}
		audit.LogAttrs(ctx, slog.LevelInfo, "data subject key shredded",
			slog.String("event", "shred"),
			slog.String("subject_id", subject),
			slog.String("store", store.Name()),
			slog.String("result", result),
			slog.String("by", by),
			slog.Time("at", time.Now().UTC()),
		)
	}
	if err != nil {
		return false, fmt.Errorf("subject: shred %q: %w", subject, err)
	}
	return existed, nil
}

// KeyGeneration implements keyring.Rotating with the base keyring's
// generation (0 if it does not rotate), so the codec still notices a
// rotation of the namespace keys. Subject keys never rotate.
func (k *Keyring) KeyGeneration() uint64 {
	if r, ok := k.base.(keyring.Rotating); ok {
		return r.KeyGeneration()
	}
	return 0
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
	return keyring.Secret{}, fmt.Errorf("subject: legacy key %q: %w", truncate(keyID), keyring.ErrUnknownKey)
}

// parseKeyID splits "subject/<store>/<subject>/<generation>".
func parseKeyID(store, keyID string) (subject, gen string, err error) {
	rest, ok := strings.CutPrefix(keyID, keyring.SubjectKeyIDPrefix+store+"/")
	if ok {
		subject, gen, ok = strings.Cut(rest, "/")
	}
	if !ok || gen == "" || strings.Contains(gen, "/") || keyring.ValidSubject(subject) != nil {
		return "", "", fmt.Errorf("subject: malformed %s key ID %q: %w", store, truncate(keyID), keyring.ErrUnknownKey)
	}
	return subject, gen, nil
}

func keyID(store, subject, gen string) string {
	return keyring.SubjectKeyIDPrefix + store + "/" + subject + "/" + gen
}

func truncate(s string) string {
	if len(s) > 160 {
		return s[:160] + "..."
	}
	return s
}
