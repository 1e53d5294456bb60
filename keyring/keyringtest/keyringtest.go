// Package keyringtest provides an in-memory keyring for tests of packages
// that depend on a keyring. Its keys are random and never leave the process;
// never use it outside tests.
package keyringtest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/envelopecodec/envelope/keyring"
)

// Keyring is an in-memory keyring.Keyring that counts its calls and can be
// told to fail. Its zero value is not usable; call New.
type Keyring struct {
	mu     sync.Mutex
	keys   map[string]cipher.AEAD
	active string
	serial int
	err    error

	newCalls    atomic.Int64
	unwrapCalls atomic.Int64
	gen         atomic.Uint64
}

var (
	_ keyring.Keyring  = (*Keyring)(nil)
	_ keyring.Checker  = (*Keyring)(nil)
	_ keyring.Rotating = (*Keyring)(nil)
)

// New returns a keyring with one active key, "test/1".
func New() *Keyring {
	k := &Keyring{keys: make(map[string]cipher.AEAD)}
	k.Rotate()
	return k
}

// Rotate adds a new key ("test/2", "test/3", ...), makes it active and
// returns its ID. Older keys still unwrap.
func (k *Keyring) Rotate() string {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		panic(err)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.serial++
	k.active = fmt.Sprintf("test/%d", k.serial)
	k.keys[k.active] = aead
	k.gen.Add(1)
	return k.active
}

// KeyGeneration implements keyring.Rotating: Rotate changes it.
func (k *Keyring) KeyGeneration() uint64 { return k.gen.Load() }

// Forget removes a key, as if it had been deleted from the key service.
func (k *Keyring) Forget(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, id)
}

// SetError makes every call fail with err (wrapped) until SetError(nil).
func (k *Keyring) SetError(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.err = err
}

// ActiveKeyID returns the ID of the active key.
func (k *Keyring) ActiveKeyID() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.active
}

// NewDataKeyCalls and UnwrapCalls count the calls made so far.
func (k *Keyring) NewDataKeyCalls() int64 { return k.newCalls.Load() }

// UnwrapCalls counts UnwrapDataKeys calls made so far.
func (k *Keyring) UnwrapCalls() int64 { return k.unwrapCalls.Load() }

// NewDataKey implements keyring.Keyring.
func (k *Keyring) NewDataKey(ctx context.Context, namespace string) (keyring.DataKey, error) {
	k.newCalls.Add(1)
	k.mu.Lock()
	aead, id, err := k.keys[k.active], k.active, k.err
	k.mu.Unlock()
	if err != nil {
		return keyring.DataKey{}, fmt.Errorf("keyringtest: new data key: %w", err)
	}
	dek := make([]byte, keyring.DataKeySize)
	nonce := make([]byte, 12)
	if _, err := rand.Read(dek); err != nil {
		return keyring.DataKey{}, err
	}
	if _, err := rand.Read(nonce); err != nil {
		return keyring.DataKey{}, err
	}
	wrapped := aead.Seal(nonce, nonce, dek, []byte(id))
	return keyring.DataKey{KeyID: id, Wrapped: wrapped, Key: keyring.NewSecret(dek)}, nil
}

// UnwrapDataKeys implements keyring.Keyring.
func (k *Keyring) UnwrapDataKeys(ctx context.Context, namespace string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	k.unwrapCalls.Add(1)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return nil, fmt.Errorf("keyringtest: unwrap: %w", k.err)
	}
	out := make([]keyring.Secret, len(keys))
	for i, w := range keys {
		aead, ok := k.keys[w.KeyID]
		if !ok {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("keyringtest: key %q: %w", w.KeyID, keyring.ErrUnknownKey)}
		}
		if len(w.Wrapped) < 12 {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("keyringtest: key %q: %w", w.KeyID, keyring.ErrUnwrap)}
		}
		dek, err := aead.Open(nil, w.Wrapped[:12], w.Wrapped[12:], []byte(w.KeyID))
		if err != nil {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("keyringtest: key %q: %w", w.KeyID, keyring.ErrUnwrap)}
		}
		out[i] = keyring.NewSecret(dek)
	}
	return out, nil
}

// Check implements keyring.Checker: it fails while SetError is in force.
func (k *Keyring) Check(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return fmt.Errorf("keyringtest: %w", k.err)
	}
	return nil
}
