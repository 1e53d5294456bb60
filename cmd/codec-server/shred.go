package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/envelopecodec/envelope/internal/keyflags"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// subjectFlags choose the store of data subject keys (docs/ERASURE.md),
// for the server and `keys shred` alike.
type subjectFlags struct {
	Store       string // "", "dir" or "vault"
	Dir         string
	VaultPrefix string
}

func (s *subjectFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.Store, "subject-store", s.Store, "where data subject keys live (docs/ERASURE.md): dir or vault (the transit mount and connection of --vault-*); empty: payloads of data subjects cannot be decoded")
	fs.StringVar(&s.Dir, "subject-dir", s.Dir, "folder of the data subject keys with --subject-store dir")
	fs.StringVar(&s.VaultPrefix, "subject-vault-prefix", subject.DefaultVaultKeyPrefix, "transit key name prefix of data subject keys with --subject-store vault")
}

func (s *subjectFlags) validate(keys *keyflags.Options) error {
	switch s.Store {
	case "":
		return nil
	case "dir":
		if s.Dir == "" {
			return errors.New("--subject-store dir needs --subject-dir")
		}
		return nil
	case subject.VaultStoreName:
		if keys.Vault.Address == "" {
			return errors.New("--subject-store vault needs the Vault keyring (--vault-addr)")
		}
		return nil
	}
	return fmt.Errorf("--subject-store %q: want dir or vault", s.Store)
}

// open returns the configured store; base is the keyring keyflags opened
// (with --subject-store vault, its Vault connection is used).
func (s *subjectFlags) open(base keyring.Keyring, keys *keyflags.Options) (subject.Store, error) {
	switch s.Store {
	case "dir":
		return subject.NewDir(s.Dir)
	case subject.VaultStoreName:
		vk, ok := base.(*vault.Keyring)
		if !ok {
			return nil, errors.New("--subject-store vault needs the Vault keyring (--vault-addr)")
		}
		return subject.NewVault(subject.VaultConfig{Client: vk.APIClient(), Mount: keys.Vault.Mount, KeyPrefix: s.VaultPrefix})
	}
	return nil, nil
}

// wrap returns base with the data subject keys of the configured store,
// or base itself without --subject-store.
func (s *subjectFlags) wrap(base keyring.Keyring, keys *keyflags.Options) (keyring.Keyring, error) {
	store, err := s.open(base, keys)
	if err != nil || store == nil {
		return base, err
	}
	return subject.New(base, store, subject.Options{})
}

const shredUsage = `Usage:
  codec-server keys shred --subject ID --subject-store dir|vault [store and keyring flags]

Deletes the data subject's key for good: every payload sealed for the subject
becomes unreadable (codec.ErrErased), in histories, archives and backups of
them. Writes an audit line (JSON) to stderr or --audit-log. See docs/ERASURE.md.
`

// runShred implements `codec-server keys shred`.
func runShred(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("codec-server keys shred", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, shredUsage); fs.PrintDefaults() }
	id := fs.String("subject", "", "the data subject whose key to shred")
	auditPath := fs.String("audit-log", "", "append the audit line to this file instead of stderr")
	var subj subjectFlags
	subj.Register(fs)
	var keys keyflags.Options
	keys.Register(fs)
	if err := keyflags.Parse(fs, args, lookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *id == "" || subj.Store == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if err := subj.validate(&keys); err != nil {
		fmt.Fprintln(stderr, "codec-server keys shred:", err)
		return 2
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var base keyring.Keyring
	if subj.Store == subject.VaultStoreName {
		kr, closer, err := keys.Open(ctx, logger)
		if err != nil {
			fmt.Fprintln(stderr, "codec-server keys shred:", err)
			return 1
		}
		defer closer.Close()
		base = kr
	}
	store, err := subj.open(base, &keys)
	if err != nil {
		fmt.Fprintln(stderr, "codec-server keys shred:", err)
		return 1
	}
	var w io.Writer = stderr
	if *auditPath != "" {
		f, err := os.OpenFile(*auditPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintln(stderr, "codec-server keys shred:", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	by, _ := lookup("USER")
	audit := slog.New(slog.NewJSONHandler(w, nil)).With("log", "audit")
	existed, err := subject.Shred(ctx, store, *id, by, audit)
	if err != nil {
		fmt.Fprintln(stderr, "codec-server keys shred:", err)
		return 1
	}
	if !existed {
		fmt.Fprintf(stdout, "data subject %s had no key in the %s store; nothing to shred\n", *id, store.Name())
		return 0
	}
	fmt.Fprintf(stdout, "shredded the key of data subject %s in the %s store; its payloads are erased\n", *id, store.Name())
	return 0
}
