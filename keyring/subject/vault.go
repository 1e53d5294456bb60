package subject

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// VaultStoreName is the [Vault] store's label in key IDs.
const VaultStoreName = "vault"

// Defaults for [VaultConfig].
const (
	DefaultVaultMount     = "transit"
	DefaultVaultKeyPrefix = "subject-"
	DefaultVaultParallel  = 8
)

// VaultCaller makes one Vault request on the namespace keyring's
// connection, with its timeouts, retries and re-login: a
// *vault.Keyring (its Call method).
type VaultCaller interface {
	Call(ctx context.Context, operation, key, method, path string, body any) (status int, data json.RawMessage, err error)
}

var _ VaultCaller = (*vault.Keyring)(nil)

// VaultConfig configures a [Vault] store. Keyring is required; all other
// fields are optional.
type VaultConfig struct {
	// Keyring is the namespace keyring whose connection the store uses:
	// a hung or restarted Vault is handled as for the namespace keys.
	// Its token needs, on <mount>/keys/<prefix>*: create, update (and
	// read, update, delete to shred or re-admit); on
	// <mount>/datakey/plaintext/<prefix>*, <mount>/decrypt/<prefix>*,
	// <mount>/hmac/<prefix>* and <mount>/hmac/tomb-<prefix>*: update; to
	// shred or re-admit, also create, read, update, delete on
	// <mount>/keys/tomb-<prefix>*.
	Keyring VaultCaller
	// Mount is the transit mount. Default: "transit".
	Mount string
	// KeyPrefix starts every transit key name of the store: the key of
	// handle H is <KeyPrefix>H, the store's own key (its identity and
	// handle HMAC key) <KeyPrefix>store. Tombstones are named
	// tomb-<KeyPrefix>H-blocked and tomb-<KeyPrefix>H-erased-<generation>
	// ([VaultTombstonePrefix]): outside <KeyPrefix>*, so a token that may
	// create subject keys (workers) is not thereby allowed to create a
	// tombstone. Default: "subject-".
	KeyPrefix string
	// Parallel bounds the decrypt calls one UnwrapDataKeys makes at once
	// (one per handle). Default: 8.
	Parallel int
}

// Vault is a [Store] with one Vault transit key (aes256-gcm96) per data
// subject handle. Key material never leaves Vault; Shred creates the
// tombstone keys, sets deletion_allowed on the key and deletes it, which
// removes it from Vault's storage (but not from snapshots or backups
// taken before: docs/ERASURE.md). Creation is race-free: Vault creates a
// transit key under a lock and never replaces an existing one.
//
// Handles are an HMAC (transit/hmac, key version 1) under the store's own
// transit key <prefix>store, created by [InitVault]; its fingerprint is
// the store's identity. Transit decrypts a batch under one key only, so
// UnwrapDataKeys makes one call per handle (in parallel), not one per
// data key. Key IDs are "subject/vault/<handle>/<generation>", the
// generation being a fingerprint of the handle's transit key (an HMAC
// under it of a fixed input): a key created again after a re-admission
// has another generation, and old payloads stay erased.
type Vault struct {
	c        VaultCaller
	mount    string
	prefix   string
	parallel int
	id       string
}

var _ Store = (*Vault)(nil)

func newVault(cfg VaultConfig) (*Vault, error) {
	if cfg.Keyring == nil {
		return nil, errors.New("subject: VaultConfig.Keyring is nil")
	}
	if cfg.Mount == "" {
		cfg.Mount = DefaultVaultMount
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultVaultKeyPrefix
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultVaultParallel
	}
	if lit, _, _ := strings.Cut(cfg.KeyPrefix, vault.NamespacePlaceholder); lit != "" && strings.HasPrefix(VaultTombstonePrefix(lit), lit) {
		return nil, fmt.Errorf("subject: vault key prefix %q also starts the tombstones' names (%q): a policy for the subject keys would let workers create tombstones", cfg.KeyPrefix, VaultTombstonePrefix(cfg.KeyPrefix))
	}
	return &Vault{c: cfg.Keyring, mount: strings.Trim(cfg.Mount, "/"), prefix: cfg.KeyPrefix, parallel: cfg.Parallel}, nil
}

// NewVault opens the Vault store of cfg. It fails with
// [ErrNotInitialised] if the mount has no store key <prefix>store (it
// never creates one: [InitVault] does).
func NewVault(ctx context.Context, cfg VaultConfig) (*Vault, error) {
	v, err := newVault(cfg)
	if err != nil {
		return nil, err
	}
	id, err := v.birth(ctx, v.storeKey())
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("subject: vault mount %s has no key %s: %w", v.mount, v.storeKey(), ErrNotInitialised)
	}
	v.id = id
	return v, nil
}

// InitVault creates the Vault store of cfg: its store key <prefix>store.
// It refuses a mount that already has one.
func InitVault(ctx context.Context, cfg VaultConfig) (*Vault, error) {
	v, err := newVault(cfg)
	if err != nil {
		return nil, err
	}
	id, err := v.birth(ctx, v.storeKey())
	if err != nil {
		return nil, err
	}
	if id != "" {
		return nil, fmt.Errorf("subject: vault mount %s already has a store (key %s)", v.mount, v.storeKey())
	}
	if err := v.createKey(ctx, v.storeKey()); err != nil {
		return nil, err
	}
	return NewVault(ctx, cfg)
}

// Name implements Store.
func (v *Vault) Name() string { return VaultStoreName }

// ID implements Store: the fingerprint of the store key.
func (v *Vault) ID() string { return v.id }

// storeKey names the store's own key: the prefix up to a {namespace}
// placeholder, then "store" (one key for every namespace).
func (v *Vault) storeKey() string {
	lit, _, _ := strings.Cut(v.prefix, vault.NamespacePlaceholder)
	return lit + "store"
}

// prefixFor returns the key name prefix of namespace: KeyPrefix with
// {namespace} replaced.
func (v *Vault) prefixFor(namespace string) (string, error) {
	if !strings.Contains(v.prefix, vault.NamespacePlaceholder) {
		return v.prefix, nil
	}
	if namespace == "" {
		namespace = "default"
	}
	for i := 0; i < len(namespace); i++ {
		c := namespace[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", fmt.Errorf("subject: namespace %q gives no valid transit key name: %w", namespace, keyring.ErrPermission)
		}
	}
	return strings.ReplaceAll(v.prefix, vault.NamespacePlaceholder, namespace), nil
}

// VaultTombstonePrefix returns the name prefix of the [Vault] store's
// tombstones for the subject key prefix keyPrefix: "tomb-" + keyPrefix.
// It does not start with keyPrefix, so a Vault policy that lets workers
// create keys <keyPrefix>* does not let them create tombstones (a
// made-up erased tombstone would make a key ID that never existed show as
// erased; a blocked one would block a subject).
func VaultTombstonePrefix(keyPrefix string) string { return "tomb-" + keyPrefix }

func keyName(prefix, handle string) string { return prefix + handle }
func blockedName(prefix, handle string) string {
	return VaultTombstonePrefix(prefix) + handle + "-blocked"
}
func erasedName(prefix, handle, gen string) string {
	return VaultTombstonePrefix(prefix) + handle + "-erased-" + gen
}

// call makes one Vault request through the keyring's call path and maps
// its failure: a missing transit key (transit's own 400 "encryption key
// not found") is notFound; a 404 (no handler for the route: a wrong
// mount, a proxy) is keyring.ErrUnavailable, never a missing key; any
// other 400 is keyring.ErrUnwrap.
func (v *Vault) call(ctx context.Context, what, key, method, path string, body any, notFound error) (json.RawMessage, error) {
	status, data, err := v.c.Call(ctx, what, key, method, v.mount+"/"+path, body)
	if err == nil {
		return data, nil
	}
	switch {
	case status == http.StatusBadRequest && errors.Is(err, keyring.ErrUnknownKey):
		return nil, fmt.Errorf("subject: %w: %w", err, notFound)
	case status == http.StatusNotFound:
		return nil, fmt.Errorf("subject: %v (is the transit mount right?): %w", err, keyring.ErrUnavailable)
	case status == http.StatusBadRequest:
		return nil, fmt.Errorf("subject: %v: %w", err, keyring.ErrUnwrap)
	}
	return nil, fmt.Errorf("subject: %w", err)
}

func (v *Vault) createKey(ctx context.Context, name string) error {
	_, err := v.call(ctx, "create key", name, http.MethodPost, "keys/"+name, map[string]any{"type": "aes256-gcm96"}, keyring.ErrUnavailable)
	return err
}

// deleteKey allows deletion of a transit key and deletes it.
func (v *Vault) deleteKey(ctx context.Context, name string) error {
	if _, err := v.call(ctx, "allow deletion", name, http.MethodPost, "keys/"+name+"/config", map[string]any{"deletion_allowed": true}, keyring.ErrUnknownKey); err != nil {
		return err
	}
	_, err := v.call(ctx, "delete key", name, http.MethodDelete, "keys/"+name, nil, keyring.ErrUnknownKey)
	return err
}

// Handle implements Store with transit/hmac under the store key.
func (v *Vault) Handle(ctx context.Context, namespace, subject string) (string, error) {
	mac, err := v.hmac(ctx, v.storeKey(), base64.StdEncoding.EncodeToString(handleInput(namespace, subject)))
	if err != nil {
		return "", err
	}
	if mac == nil {
		return "", fmt.Errorf("subject: vault key %s is gone: %w", v.storeKey(), ErrNotInitialised)
	}
	return handleOf(mac)
}

// hmac returns the HMAC of input (base64) under version 1 of the
// transit key name; nil if there is no such key.
func (v *Vault) hmac(ctx context.Context, name, input string) ([]byte, error) {
	data, err := v.call(ctx, "hmac", name, http.MethodPost, "hmac/"+name, map[string]any{"input": input, "key_version": 1}, errNoKey)
	if err != nil {
		if errors.Is(err, errNoKey) {
			return nil, nil
		}
		return nil, err
	}
	var ans struct {
		HMAC string `json:"hmac"`
	}
	json.Unmarshal(data, &ans)
	_, b64, ok := strings.Cut(strings.TrimPrefix(ans.HMAC, "vault:"), ":")
	raw, derr := base64.StdEncoding.DecodeString(b64)
	if !ok || derr != nil || len(raw) < 16 {
		return nil, fmt.Errorf("subject: vault hmac with key %s: malformed answer: %w", name, keyring.ErrUnavailable)
	}
	return raw, nil
}

// birth returns the generation of a transit key: the first 8 bytes (hex)
// of an HMAC of a fixed input under version 1 of the key, a fingerprint
// that differs for every key created; "" if there is no key.
func (v *Vault) birth(ctx context.Context, name string) (string, error) {
	raw, err := v.hmac(ctx, name, generationInput)
	if err != nil || raw == nil {
		return "", err
	}
	return hex.EncodeToString(raw[:8]), nil
}

// exists reports whether a transit key (a tombstone) exists.
func (v *Vault) exists(ctx context.Context, name string) (bool, error) {
	b, err := v.birth(ctx, name)
	return b != "", err
}

// generationInput is what birth HMACs (base64 of "envelope/subject-generation/v1").
var generationInput = base64.StdEncoding.EncodeToString([]byte("envelope/subject-generation/v1"))

var errNoKey = errors.New("no key")

// NewDataKey implements Store: it creates the handle's transit key if
// missing and no tombstone blocks it, asks Vault for a data key
// (datakey/plaintext), then checks the blocked tombstone: a handle a shred
// has blocked never gets a data key, even while its transit key is still
// there (a shred that did not get to delete it, or one running now).
func (v *Vault) NewDataKey(ctx context.Context, namespace, handle string) (keyring.DataKey, error) {
	if err := keyring.ValidSubjectHandle(handle); err != nil {
		return keyring.DataKey{}, fmt.Errorf("subject: %w", err)
	}
	p, err := v.prefixFor(namespace)
	if err != nil {
		return keyring.DataKey{}, err
	}
	name := keyName(p, handle)
	isBlocked := func() error {
		b, err := v.exists(ctx, blockedName(p, handle))
		if err == nil && b {
			err = blocked(handle)
		}
		return err
	}
	birth, err := v.birth(ctx, name)
	if err != nil {
		return keyring.DataKey{}, err
	}
	if birth == "" {
		if err := isBlocked(); err != nil {
			return keyring.DataKey{}, err
		}
		if err := v.createKey(ctx, name); err != nil {
			return keyring.DataKey{}, err
		}
		if birth, err = v.birth(ctx, name); err != nil {
			return keyring.DataKey{}, err
		}
		if birth == "" {
			return keyring.DataKey{}, blocked(handle)
		}
	}
	data, err := v.call(ctx, "datakey", name, http.MethodPost, "datakey/plaintext/"+name, map[string]any{"bits": 256}, errNoKey)
	if errors.Is(err, errNoKey) {
		// Shredded between the fingerprint and now.
		return keyring.DataKey{}, blocked(handle)
	}
	if err != nil {
		return keyring.DataKey{}, err
	}
	var ans struct{ Plaintext, Ciphertext string }
	json.Unmarshal(data, &ans)
	pt, ct := ans.Plaintext, ans.Ciphertext
	dek, err := base64.StdEncoding.DecodeString(pt)
	if err != nil || len(dek) != keyring.DataKeySize || !strings.HasPrefix(ct, "vault:v") {
		clear(dek)
		return keyring.DataKey{}, fmt.Errorf("subject: vault datakey %s: malformed answer: %w", name, keyring.ErrUnavailable)
	}
	// Checked after the data key, not before: a shred that blocked the
	// handle at any time before this answer (between the creation and
	// the data key, or one that created its tombstones and failed to
	// delete the key) wins. One call per new data key, not per payload.
	if err := isBlocked(); err != nil {
		clear(dek)
		return keyring.DataKey{}, err
	}
	return keyring.DataKey{KeyID: keyID(VaultStoreName, handle, birth), Wrapped: []byte(ct), Key: keyring.NewSecret(dek)}, nil
}

// UnwrapDataKeys implements Store: one decrypt call per subject, up to
// Parallel at once.
func (v *Vault) UnwrapDataKeys(ctx context.Context, namespace string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	p, err := v.prefixFor(namespace)
	if err != nil {
		return nil, err
	}
	type group struct {
		handle, birth string
		idx           []int
	}
	var groups []*group
	bySubject := map[string]*group{}
	for i, w := range keys {
		handle, birth, err := parseKeyID(VaultStoreName, w.KeyID)
		if err != nil {
			return nil, &keyring.KeyError{Index: i, Err: err}
		}
		g := bySubject[handle+"/"+birth]
		if g == nil {
			g = &group{handle: handle, birth: birth}
			bySubject[handle+"/"+birth] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	out := make([]keyring.Secret, len(keys))
	errs := make([]error, len(groups))
	sem := make(chan struct{}, v.parallel)
	var wg sync.WaitGroup
	// The first failure fails the call: no more decrypts are started
	// (a request of many forged key IDs costs a few calls, not one each).
	var failed atomic.Bool
	for gi, g := range groups {
		sem <- struct{}{}
		if failed.Load() {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := v.decrypt(ctx, p, g.handle, g.birth, keys, g.idx, out); err != nil {
				if _, ok := keyring.FailedKey(err); !ok {
					err = &keyring.KeyError{Index: g.idx[0], Err: err}
				}
				errs[gi] = err
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (v *Vault) decrypt(ctx context.Context, p, handle, birth string, keys []keyring.WrappedKey, idx []int, out []keyring.Secret) error {
	name := keyName(p, handle)
	batch := make([]map[string]string, len(idx))
	for j, i := range idx {
		batch[j] = map[string]string{"ciphertext": string(keys[i].Wrapped)}
	}
	data, err := v.call(ctx, "decrypt", name, http.MethodPost, "decrypt/"+name, map[string]any{"batch_input": batch}, errNoKey)
	if err != nil {
		if errors.Is(err, keyring.ErrUnwrap) || errors.Is(err, errNoKey) {
			return v.explain(ctx, p, handle, birth, keys[idx[0]].KeyID, err)
		}
		return err
	}
	var ans struct {
		BatchResults []any `json:"batch_results"`
	}
	json.Unmarshal(data, &ans)
	res := ans.BatchResults
	if len(res) != len(idx) {
		return fmt.Errorf("subject: vault decrypt with key %s: %d results for %d items: %w", name, len(res), len(idx), keyring.ErrUnavailable)
	}
	for j, r := range res {
		m, _ := r.(map[string]any)
		pt, _ := m["plaintext"].(string)
		if e, _ := m["error"].(string); e != "" || pt == "" {
			return &keyring.KeyError{Index: idx[j], Err: v.explain(ctx, p, handle, birth, keys[idx[j]].KeyID, fmt.Errorf("subject: vault decrypt with key %s: item %d refused: %w", name, j, keyring.ErrUnwrap))}
		}
		dek, err := base64.StdEncoding.DecodeString(pt)
		if err != nil || len(dek) != keyring.DataKeySize {
			return fmt.Errorf("subject: vault decrypt with key %s: malformed data key: %w", name, keyring.ErrUnwrap)
		}
		out[idx[j]] = keyring.NewSecret(dek)
	}
	return nil
}

// explain turns a refused decrypt into ErrErased when a tombstone records
// the generation the key ID names as shredded, and a missing key without
// a tombstone into ErrUnknownKey.
func (v *Vault) explain(ctx context.Context, p, handle, birth, keyID string, err error) error {
	now, berr := v.birth(ctx, keyName(p, handle))
	if berr != nil {
		return berr
	}
	if now == birth && !errors.Is(err, errNoKey) {
		return err // the key is there: a tampered wrapped key
	}
	gone, terr := v.exists(ctx, erasedName(p, handle, birth))
	switch {
	case terr != nil:
		return terr
	case gone:
		return fmt.Errorf("subject: key %q: %w", truncate.To(keyID, maxKeyIDInError), keyring.ErrErased)
	}
	return fmt.Errorf("subject: key %q is not in the vault store: %w", truncate.To(keyID, maxKeyIDInError), keyring.ErrUnknownKey)
}

// Shred implements Store: it creates the tombstones (tomb-<prefix>H-blocked
// and tomb-<prefix>H-erased-<generation>), then allows deletion of the
// handle's transit key and deletes it. A shred interrupted after the
// tombstones is finished by the next one.
func (v *Vault) Shred(ctx context.Context, namespace, handle string) (bool, error) {
	if err := keyring.ValidSubjectHandle(handle); err != nil {
		return false, fmt.Errorf("subject: %w", err)
	}
	p, err := v.prefixFor(namespace)
	if err != nil {
		return false, err
	}
	if b, err := v.exists(ctx, blockedName(p, handle)); err != nil {
		return false, err
	} else if !b {
		if err := v.createKey(ctx, blockedName(p, handle)); err != nil {
			return false, err
		}
	}
	name := keyName(p, handle)
	birth, err := v.birth(ctx, name)
	if err != nil {
		return false, err
	}
	if birth == "" {
		return false, nil
	}
	if e, err := v.exists(ctx, erasedName(p, handle, birth)); err != nil {
		return false, err
	} else if !e {
		if err := v.createKey(ctx, erasedName(p, handle, birth)); err != nil {
			return false, err
		}
	}
	if err := v.deleteKey(ctx, name); err != nil {
		return false, err
	}
	return true, nil
}

// Readmit implements Store: it deletes the handle's blocked tombstone. It
// refuses while the handle's transit key exists (an unfinished shred).
func (v *Vault) Readmit(ctx context.Context, namespace, handle string) (bool, error) {
	if err := keyring.ValidSubjectHandle(handle); err != nil {
		return false, fmt.Errorf("subject: %w", err)
	}
	p, err := v.prefixFor(namespace)
	if err != nil {
		return false, err
	}
	b, err := v.exists(ctx, blockedName(p, handle))
	if err != nil || !b {
		return false, err
	}
	// A blocked handle whose transit key is still there has a shred that
	// did not get to delete it: lifting the block now would keep the key,
	// and the payloads under it, for good.
	if birth, err := v.birth(ctx, keyName(p, handle)); err != nil {
		return false, err
	} else if birth != "" {
		return false, errUnfinishedShred(handle)
	}
	if err := v.deleteKey(ctx, blockedName(p, handle)); err != nil {
		return false, err
	}
	return true, nil
}
