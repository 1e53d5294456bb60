package subject

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"

	"github.com/envelopecodec/envelope/keyring"
)

// VaultStoreName is the [Vault] store's label in key IDs.
const VaultStoreName = "vault"

// Defaults for [VaultConfig].
const (
	DefaultVaultMount     = "transit"
	DefaultVaultKeyPrefix = "subject-"
	DefaultVaultParallel  = 8
)

// VaultConfig configures a [Vault] store. Client is required; all other
// fields are optional.
type VaultConfig struct {
	// Client is an authenticated Vault client. Its token needs, on
	// <mount>/keys/<prefix>*: create, read, update, delete; on
	// <mount>/keys/<prefix>*/config: update (shred only); on
	// <mount>/datakey/plaintext/<prefix>*, <mount>/decrypt/<prefix>* and
	// <mount>/hmac/<prefix>*: update.
	Client *api.Client
	// Mount is the transit mount. Default: "transit".
	Mount string
	// KeyPrefix starts every subject's transit key name: the key of
	// subject S is <KeyPrefix>S. Default: "subject-".
	KeyPrefix string
	// Parallel bounds the decrypt calls one UnwrapDataKeys makes at once
	// (one per subject). Default: 8.
	Parallel int
}

// Vault is a [Store] with one Vault transit key (aes256-gcm96) per data
// subject. Key material never leaves Vault; Shred sets deletion_allowed on
// the key and deletes it, which removes it from Vault's storage (but not
// from snapshots or backups taken before: docs/ERASURE.md). Creation is
// race-free: Vault creates a transit key under a lock and never replaces
// an existing one.
//
// Transit decrypts a batch under one key only, so UnwrapDataKeys makes one
// call per subject (in parallel), not one per data key. Key IDs are
// "subject/vault/<subject>/<generation>", the generation being a
// fingerprint of the subject's transit key (an HMAC under it of a fixed
// input): a key created again after a shred has another generation, and
// old payloads stay erased.
type Vault struct {
	c        *api.Client
	mount    string
	prefix   string
	parallel int
}

var _ Store = (*Vault)(nil)

// NewVault returns a Vault store.
func NewVault(cfg VaultConfig) (*Vault, error) {
	if cfg.Client == nil {
		return nil, errors.New("subject: VaultConfig.Client is nil")
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
	return &Vault{c: cfg.Client, mount: strings.Trim(cfg.Mount, "/"), prefix: cfg.KeyPrefix, parallel: cfg.Parallel}, nil
}

// Name implements Store.
func (v *Vault) Name() string { return VaultStoreName }

func (v *Vault) keyName(subject string) string { return v.prefix + subject }

// vaultError maps a Vault failure to a keyring sentinel; notFound is the
// sentinel for a missing key.
func vaultError(what string, err error, notFound error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		text := strings.Join(re.Errors, "; ")
		switch {
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("subject: vault %s: %w", what, keyring.ErrPermission)
		case re.StatusCode == http.StatusBadRequest && strings.Contains(text, "encryption key not found"):
			// Transit's own answer for a key that does not exist. A 404
			// ("no handler for route": wrong mount, a proxy) is not: it
			// must not make payloads "erased" or a shred find "no key".
			return fmt.Errorf("subject: vault %s: key not found: %w", what, notFound)
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("subject: vault %s: %s (is the transit mount right?): %w", what, truncate(text), keyring.ErrUnavailable)
		case re.StatusCode == http.StatusBadRequest:
			return fmt.Errorf("subject: vault %s: %s: %w", what, truncate(text), keyring.ErrUnwrap)
		}
		return fmt.Errorf("subject: vault %s: status %d: %w", what, re.StatusCode, keyring.ErrUnavailable)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("subject: vault %s: %w", what, err)
	}
	return fmt.Errorf("subject: vault %s: %w", what, keyring.ErrUnavailable)
}

// birth returns the generation of subject's transit key: the first 8
// bytes (hex) of an HMAC of a fixed input under version 1 of the key, a
// fingerprint that differs for every key created; "" if there is no key.
func (v *Vault) birth(ctx context.Context, name string) (string, error) {
	s, err := v.c.Logical().WriteWithContext(ctx, v.mount+"/hmac/"+name, map[string]any{"input": generationInput, "key_version": 1})
	if err != nil {
		err = vaultError("fingerprint key "+name, err, errNoKey)
		if errors.Is(err, errNoKey) {
			return "", nil
		}
		return "", err
	}
	var mac string
	if s != nil && s.Data != nil {
		mac, _ = s.Data["hmac"].(string)
	}
	_, b64, ok := strings.Cut(strings.TrimPrefix(mac, "vault:"), ":")
	raw, derr := base64.StdEncoding.DecodeString(b64)
	if !ok || derr != nil || len(raw) < 8 {
		return "", fmt.Errorf("subject: vault fingerprint key %s: malformed answer: %w", name, keyring.ErrUnavailable)
	}
	return hex.EncodeToString(raw[:8]), nil
}

// generationInput is what birth HMACs (base64 of "envelope/subject-generation/v1").
var generationInput = base64.StdEncoding.EncodeToString([]byte("envelope/subject-generation/v1"))

var errNoKey = errors.New("no key")

// NewDataKey implements Store: it creates the subject's transit key if
// missing, then asks Vault for a data key (datakey/plaintext).
func (v *Vault) NewDataKey(ctx context.Context, subject string) (keyring.DataKey, error) {
	if err := keyring.ValidSubject(subject); err != nil {
		return keyring.DataKey{}, fmt.Errorf("subject: %w", err)
	}
	name := v.keyName(subject)
	birth, err := v.birth(ctx, name)
	if err != nil {
		return keyring.DataKey{}, err
	}
	if birth == "" {
		if _, err := v.c.Logical().WriteWithContext(ctx, v.mount+"/keys/"+name, map[string]any{"type": "aes256-gcm96"}); err != nil {
			return keyring.DataKey{}, vaultError("create key "+name, err, keyring.ErrUnavailable)
		}
		if birth, err = v.birth(ctx, name); err != nil {
			return keyring.DataKey{}, err
		}
		if birth == "" {
			return keyring.DataKey{}, fmt.Errorf("subject: vault key %s vanished after creation (shredded meanwhile?): %w", name, keyring.ErrErased)
		}
	}
	s, err := v.c.Logical().WriteWithContext(ctx, v.mount+"/datakey/plaintext/"+name, map[string]any{"bits": 256})
	if err != nil {
		return keyring.DataKey{}, vaultError("datakey "+name, err, keyring.ErrErased)
	}
	if s == nil || s.Data == nil {
		return keyring.DataKey{}, fmt.Errorf("subject: vault datakey %s: empty answer: %w", name, keyring.ErrUnavailable)
	}
	pt, _ := s.Data["plaintext"].(string)
	ct, _ := s.Data["ciphertext"].(string)
	dek, err := base64.StdEncoding.DecodeString(pt)
	if err != nil || len(dek) != keyring.DataKeySize || !strings.HasPrefix(ct, "vault:v") {
		return keyring.DataKey{}, fmt.Errorf("subject: vault datakey %s: malformed answer: %w", name, keyring.ErrUnavailable)
	}
	return keyring.DataKey{KeyID: keyID(VaultStoreName, subject, birth), Wrapped: []byte(ct), Key: keyring.NewSecret(dek)}, nil
}

// UnwrapDataKeys implements Store: one decrypt call per subject, up to
// Parallel at once.
func (v *Vault) UnwrapDataKeys(ctx context.Context, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	type group struct {
		subject, birth string
		idx            []int
	}
	var groups []*group
	bySubject := map[string]*group{}
	for i, w := range keys {
		subject, birth, err := parseKeyID(VaultStoreName, w.KeyID)
		if err != nil {
			return nil, &keyring.KeyError{Index: i, Err: err}
		}
		g := bySubject[subject+"/"+birth]
		if g == nil {
			g = &group{subject: subject, birth: birth}
			bySubject[subject+"/"+birth] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	out := make([]keyring.Secret, len(keys))
	errs := make([]error, len(groups))
	sem := make(chan struct{}, v.parallel)
	var wg sync.WaitGroup
	for gi, g := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := v.decrypt(ctx, g.subject, g.birth, keys, g.idx, out); err != nil {
				if _, ok := keyring.FailedKey(err); !ok {
					err = &keyring.KeyError{Index: g.idx[0], Err: err}
				}
				errs[gi] = err
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

func (v *Vault) decrypt(ctx context.Context, subject, birth string, keys []keyring.WrappedKey, idx []int, out []keyring.Secret) error {
	name := v.keyName(subject)
	batch := make([]map[string]string, len(idx))
	for j, i := range idx {
		batch[j] = map[string]string{"ciphertext": string(keys[i].Wrapped)}
	}
	s, err := v.c.Logical().WriteWithContext(ctx, v.mount+"/decrypt/"+name, map[string]any{"batch_input": batch})
	if err != nil {
		err = vaultError("decrypt with key "+name, err, keyring.ErrErased)
		if errors.Is(err, keyring.ErrUnwrap) {
			return v.explain(ctx, name, birth, keys[idx[0]].KeyID, err)
		}
		return err
	}
	var res []any
	if s != nil && s.Data != nil {
		res, _ = s.Data["batch_results"].([]any)
	}
	if len(res) != len(idx) {
		return fmt.Errorf("subject: vault decrypt with key %s: %d results for %d items: %w", name, len(res), len(idx), keyring.ErrUnavailable)
	}
	for j, r := range res {
		m, _ := r.(map[string]any)
		pt, _ := m["plaintext"].(string)
		if e, _ := m["error"].(string); e != "" || pt == "" {
			return &keyring.KeyError{Index: idx[j], Err: v.explain(ctx, name, birth, keys[idx[j]].KeyID, fmt.Errorf("subject: vault decrypt with key %s: item %d refused: %w", name, j, keyring.ErrUnwrap))}
		}
		dek, err := base64.StdEncoding.DecodeString(pt)
		if err != nil || len(dek) != keyring.DataKeySize {
			return fmt.Errorf("subject: vault decrypt with key %s: malformed data key: %w", name, keyring.ErrUnwrap)
		}
		out[idx[j]] = keyring.NewSecret(dek)
	}
	return nil
}

// explain turns a refused decrypt into ErrErased when the subject's key
// is not the one the key ID names any more (shredded and created again).
func (v *Vault) explain(ctx context.Context, name, birth, keyID string, err error) error {
	now, berr := v.birth(ctx, name)
	if berr == nil && now != birth {
		return fmt.Errorf("subject: key %q: %w", truncate(keyID), keyring.ErrErased)
	}
	return err
}

// Shred implements Store: it allows deletion of the subject's transit key
// and deletes it.
func (v *Vault) Shred(ctx context.Context, subject string) (bool, error) {
	if err := keyring.ValidSubject(subject); err != nil {
		return false, fmt.Errorf("subject: %w", err)
	}
	name := v.keyName(subject)
	birth, err := v.birth(ctx, name)
	if err != nil {
		return false, err
	}
	if birth == "" {
		return false, nil
	}
	if _, err := v.c.Logical().WriteWithContext(ctx, v.mount+"/keys/"+name+"/config", map[string]any{"deletion_allowed": true}); err != nil {
		return false, vaultError("allow deletion of key "+name, err, keyring.ErrErased)
	}
	if _, err := v.c.Logical().DeleteWithContext(ctx, v.mount+"/keys/"+name); err != nil {
		return false, vaultError("delete key "+name, err, keyring.ErrErased)
	}
	return true, nil
}
