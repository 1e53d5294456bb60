package keyconfig

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

// Subjects chooses the store of data subject keys (docs/ERASURE.md):
// --subject-store, --subject-dir, --subject-vault-prefix.
type Subjects struct {
	Store       string // "", "dir" or "vault"
	Dir         string
	VaultPrefix string
}

func (s *Subjects) register(fs *flag.FlagSet) {
	if s.VaultPrefix == "" {
		s.VaultPrefix = subject.DefaultVaultKeyPrefix
	}
	fs.StringVar(&s.Store, "subject-store", s.Store, "where data subject keys live (docs/ERASURE.md): dir or vault (the transit mount and connection of --vault-*); empty: payloads of data subjects cannot be decoded")
	fs.StringVar(&s.Dir, "subject-dir", s.Dir, "folder of the data subject keys with --subject-store dir")
	fs.StringVar(&s.VaultPrefix, "subject-vault-prefix", s.VaultPrefix, "transit key name prefix of data subject keys with --subject-store vault")
}

// needsKeyring reports whether the store lives in the keyring's service.
func (s *Subjects) needsKeyring() bool { return s.Store == subject.VaultStoreName }

// validate reports missing or contradictory settings (--subject-store
// vault needs the Vault keyring).
func (s *Subjects) validate(c *Config) error {
	switch s.Store {
	case "":
		return nil
	case subject.DirStoreName:
		if s.Dir == "" {
			return errors.New("keyconfig: --subject-store dir needs --subject-dir")
		}
		return nil
	case subject.VaultStoreName:
		if c.Vault.Address == "" {
			return errors.New("keyconfig: --subject-store vault needs the Vault keyring (--vault-addr)")
		}
		prefix := s.VaultPrefix
		if prefix == "" {
			prefix = subject.DefaultVaultKeyPrefix
		}
		for _, name := range append([]string{c.Vault.KeyName}, c.Vault.PreviousKeys...) {
			if overlaps(name, prefix) || overlaps(name, subject.VaultTombstonePrefix(prefix)) {
				return fmt.Errorf("keyconfig: --subject-vault-prefix %q can name the namespace key %q: a shred of a data subject could delete it; choose a prefix that neither starts the key name nor is started by it", prefix, name)
			}
		}
		return nil
	}
	return fmt.Errorf("keyconfig: --subject-store %q: want dir or vault", s.Store)
}

// open returns the configured store, or nil without --subject-store. base
// is the open keyring: with --subject-store vault its Vault connection
// (token renewal included) serves the store. A folder or mount that is
// not an initialised store is an error naming `codec-server keys
// init-subject-store`; only create (that command) makes a store.
func (s *Subjects) open(ctx context.Context, base keyring.Keyring, c *Config, create bool) (subject.Store, error) {
	if err := s.validate(c); err != nil {
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
			return nil, errors.New("keyconfig: --subject-store vault needs the Vault keyring (--vault-addr)")
		}
		cfg := subject.VaultConfig{Keyring: vk, Mount: c.Vault.Mount, KeyPrefix: s.VaultPrefix}
		if create {
			st, err = subject.InitVault(ctx, cfg)
		} else {
			st, err = subject.NewVault(ctx, cfg)
		}
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyconfig: --subject-store %s: %w", s.Store, err)
	}
	return st, nil
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
