// Package keyring holds the key-encryption keys (KEKs) that wrap the data
// keys of the envelope codec, and the interface the codec needs from them.
//
// A [Keyring] hands out fresh data keys already wrapped under its active
// key-encryption key, and unwraps data keys that earlier payloads carry.
// Implementations in this module: [File] (a local JSON key file) and the
// Vault transit keyring in keyring/vault. Fakes for tests live in
// keyring/keyringtest.
//
// # Key IDs
//
// Every wrapped data key travels with the ID of the KEK that wrapped it.
// Key IDs are opaque to the codec; a keyring must be able to unwrap any data
// key wrapped under an ID it still holds, which is what makes rotation safe:
// new payloads use the active key, old payloads keep decoding. Keyrings
// whose active key can change while in use implement [Rotating], so the
// codec stops sealing under the old key's cached data keys at once.
//
// # Namespaces
//
// Both methods take the Temporal namespace the payloads belong to. A keyring
// may choose its keys per namespace (Vault's key-name template does); the
// local file keyring uses one active key for all namespaces. An empty
// namespace means the caller does not know it.
package keyring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Errors returned by keyrings. Implementations wrap them with context, so
// test with [errors.Is].
var (
	// ErrUnknownKey means the keyring does not hold the key ID a wrapped
	// data key names.
	ErrUnknownKey = errors.New("keyring: unknown key id")
	// ErrUnwrap means a wrapped data key did not authenticate under the key
	// it names: it was tampered with or wrapped by a different key.
	ErrUnwrap = errors.New("keyring: cannot unwrap data key")
	// ErrPermission means the key service refused the operation (for
	// example Vault answered 403, or a key does not belong to the namespace).
	ErrPermission = errors.New("keyring: permission denied")
	// ErrUnavailable means the key service could not be reached or is not
	// ready (down, sealed, timing out).
	ErrUnavailable = errors.New("keyring: key service unavailable")
)

// DataKeySize is the size in bytes of the data keys keyrings hand out
// (AES-256).
const DataKeySize = 32

// Keyring wraps and unwraps data-encryption keys with key-encryption keys.
// Implementations must be safe for concurrent use.
type Keyring interface {
	// NewDataKey returns a fresh random 256-bit data key together with its
	// wrapped form under the active key-encryption key for namespace.
	NewDataKey(ctx context.Context, namespace string) (DataKey, error)

	// UnwrapDataKeys unwraps all keys in one call (a keyring backed by a
	// remote service makes at most one round trip where it can). The result
	// has the same length and order as keys. If any key fails, the error
	// names the first failing one and no keys are returned.
	UnwrapDataKeys(ctx context.Context, namespace string, keys []WrappedKey) ([]Secret, error)
}

// Checker is implemented by keyrings that can tell whether they are usable
// right now, for readiness probes.
type Checker interface {
	Check(ctx context.Context) error
}

// LegacyKeys is implemented by keyrings that hold the static keys of the
// Temporal samples' encryption codec (payloads with encoding
// binary/encrypted, an encryption-key-id and no encryption-format), so
// histories written before envelope keep decoding. Such keys only ever
// decode; they never wrap data keys and never seal new payloads.
type LegacyKeys interface {
	// LegacyKey returns the static key with the given ID, or an error
	// wrapping ErrUnknownKey.
	LegacyKey(ctx context.Context, keyID string) (Secret, error)
}

// Rotating is implemented by keyrings whose active key-encryption key can
// change while they are in use: a reloaded key file, a Vault transit key
// with a new version. The codec compares the generation on every encode and
// stops sealing under a cached data key as soon as it changes, so a rotation
// takes effect within the keyring's reload or poll interval instead of the
// codec's Options.DataKeyMaxAge.
type Rotating interface {
	// KeyGeneration returns a number that changes whenever the active
	// key-encryption key of any namespace may have changed. It must be
	// cheap (an atomic load) and safe for concurrent use.
	KeyGeneration() uint64
}

// KeyError names the wrapped key of an UnwrapDataKeys call that failed, by
// its index in the call's keys, so callers can tell which payload it came
// from. Its message is Err's; test for it with [errors.As].
type KeyError struct {
	Index int // index in the keys passed to UnwrapDataKeys
	Err   error
}

// Error returns Err's message.
func (e *KeyError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *KeyError) Unwrap() error { return e.Err }

// FailedKey returns the index of the wrapped key that err names through a
// [KeyError], and whether it names one.
func FailedKey(err error) (int, bool) {
	var ke *KeyError
	if errors.As(err, &ke) {
		return ke.Index, true
	}
	return 0, false
}

// WrappedKey is a data key wrapped under the key-encryption key KeyID.
type WrappedKey struct {
	KeyID   string
	Wrapped []byte
}

// DataKey is a data key in both its plaintext and wrapped form.
type DataKey struct {
	// KeyID names the key-encryption key that wrapped Wrapped.
	KeyID string
	// Wrapped is the data key wrapped under KeyID; it is stored with
	// each payload.
	Wrapped []byte
	// Key is the plaintext data key.
	Key Secret
}

// Secret holds key bytes. Its String, GoString, Format and LogValue methods
// redact them, so a Secret that reaches a log, an error or any fmt verb
// (%v, %d, %x, %q, %#v, ...) prints no key material.
type Secret struct {
	b []byte
}

// NewSecret returns a Secret holding b. It does not copy b; the caller must
// not modify b afterwards.
func NewSecret(b []byte) Secret { return Secret{b: b} }

// UnsafeBytes returns the raw key bytes. The caller must not modify, log or
// keep them longer than needed.
func (s Secret) UnsafeBytes() []byte { return s.b }

// Len returns the length of the secret in bytes.
func (s Secret) Len() int { return len(s.b) }

// String returns a redacted form.
func (s Secret) String() string { return "[REDACTED]" }

// GoString returns a redacted form, also for %#v.
func (s Secret) GoString() string { return "keyring.Secret{[REDACTED]}" }

// Format implements fmt.Formatter: every verb prints the redacted form,
// so no verb (%d, %o, %x, %X, %b, %c, %q, %v, %+v, %#v, ...) reaches the
// bytes.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// LogValue implements slog.LogValuer with a redacted value.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }
