package keyflags

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// SubjectOptions choose the store of data subject keys (docs/ERASURE.md):
// --subject-store, --subject-dir, --subject-vault-prefix.
type SubjectOptions struct {
	Store       string // "", "dir" or "vault"
	Dir         string
	VaultPrefix string
}

// Register adds the data subject key flags to fs.
func (s *SubjectOptions) Register(fs *flag.FlagSet) {
	if s.VaultPrefix == "" {
		s.VaultPrefix = subject.DefaultVaultKeyPrefix
	}
	fs.StringVar(&s.Store, "subject-store", s.Store, "where data subject keys live (docs/ERASURE.md): dir or vault (the transit mount and connection of --vault-*); empty: payloads of data subjects cannot be decoded")
	fs.StringVar(&s.Dir, "subject-dir", s.Dir, "folder of the data subject keys with --subject-store dir")
	fs.StringVar(&s.VaultPrefix, "subject-vault-prefix", s.VaultPrefix, "transit key name prefix of data subject keys with --subject-store vault")
}

// Validate reports missing or contradictory settings; keys are the
// keyring flags (--subject-store vault needs --vault-addr).
func (s *SubjectOptions) Validate(keys *Options) error {
	switch s.Store {
	case "":
		return nil
	case subject.DirStoreName:
		if s.Dir == "" {
			return errors.New("keyflags: --subject-store dir needs --subject-dir")
		}
		return nil
	case subject.VaultStoreName:
		if keys.Vault.Address == "" {
			return errors.New("keyflags: --subject-store vault needs the Vault keyring (--vault-addr)")
		}
		prefix := s.VaultPrefix
		if prefix == "" {
			prefix = subject.DefaultVaultKeyPrefix
		}
		for _, name := range append([]string{keys.Vault.KeyName}, keys.Vault.PreviousKeys...) {
			if overlaps(name, prefix) {
				return fmt.Errorf("keyflags: --subject-vault-prefix %q can name the namespace key %q: a shred of a data subject could delete it; choose a prefix that neither starts the key name nor is started by it", prefix, name)
			}
		}
		return nil
	}
	return fmt.Errorf("keyflags: --subject-store %q: want dir or vault", s.Store)
}

// OpenStore returns the configured store, or nil without --subject-store.
// base is the keyring Options.Open returned: with --subject-store vault its
// Vault connection (token renewal included) serves the store. A folder or
// mount that is not an initialised store is an error naming
// `codec-server keys init-subject-store`: nothing creates a store here.
func (s *SubjectOptions) OpenStore(ctx context.Context, base keyring.Keyring, keys *Options) (subject.Store, error) {
	return s.openStore(ctx, base, keys, false)
}

// InitStore creates the configured store (codec-server keys
// init-subject-store).
func (s *SubjectOptions) InitStore(ctx context.Context, base keyring.Keyring, keys *Options) (subject.Store, error) {
	if s.Store == "" {
		return nil, errors.New("keyflags: --subject-store is required: dir or vault")
	}
	return s.openStore(ctx, base, keys, true)
}

func (s *SubjectOptions) openStore(ctx context.Context, base keyring.Keyring, keys *Options, create bool) (subject.Store, error) {
	if err := s.Validate(keys); err != nil {
		return nil, err
	}
	var (
		st  subject.Store
		err error
	)
	switch s.Store {
	case subject.DirStoreName:
		if create {
			st, err = subject.InitDir(s.Dir)
		} else {
			st, err = subject.NewDir(s.Dir)
		}
	case subject.VaultStoreName:
		vk, ok := base.(*vault.Keyring)
		if !ok {
			return nil, errors.New("keyflags: --subject-store vault needs the Vault keyring (--vault-addr)")
		}
		cfg := subject.VaultConfig{Client: vk.APIClient(), Mount: keys.Vault.Mount, KeyPrefix: s.VaultPrefix, Timeout: keys.Vault.Timeout}
		if create {
			st, err = subject.InitVault(ctx, cfg)
		} else {
			st, err = subject.NewVault(ctx, cfg)
		}
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyflags: --subject-store %s: %w", s.Store, err)
	}
	return st, nil
}

// Wrap returns base with the data subject keys of the configured store
// (a *subject.Keyring), or base itself without --subject-store.
func (s *SubjectOptions) Wrap(ctx context.Context, base keyring.Keyring, keys *Options) (keyring.Keyring, error) {
	store, err := s.OpenStore(ctx, base, keys)
	if err != nil || store == nil {
		return base, err
	}
	return subject.New(base, store, subject.Options{})
}

// overlaps reports whether a data subject's transit key name (prefix +
// subject) can equal the namespace key name or template name. A template
// that starts with {namespace} is not checked: any prefix could match a
// namespace's name.
func overlaps(name, prefix string) bool {
	if lit, _, templ := strings.Cut(name, vault.NamespacePlaceholder); templ {
		return lit != "" && (strings.HasPrefix(lit, prefix) || strings.HasPrefix(prefix, lit))
	}
	return len(name) > len(prefix) && strings.HasPrefix(name, prefix)
}
