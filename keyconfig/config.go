package keyconfig

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// DefaultDevKeysFile is where commands keep the development key file when no
// keyring is configured, relative to the working directory. The repository
// ignores .data/.
const DefaultDevKeysFile = ".data/dev-keyring.json"

// Config says where the keys come from. The zero value is valid and
// configures nothing; [Default] sets the reload interval. Fill it with
// [Config.Register] and [Parse], or with [FromEnv].
type Config struct {
	// File is the key file source (--keys-file, --keys-reload).
	File FileSource
	// Vault is the Vault transit source (--vault-*).
	Vault VaultSource

	// Subjects chooses the store of data subject keys (--subject-*).
	Subjects Subjects

	// DevKeysFile, when set, is created (mode 0600) or reused when no
	// source is configured, and Open logs a warning that a development
	// key file is in use. It is not a flag: commands set it (usually to
	// DefaultDevKeysFile) to get a working default, and check it with
	// CheckDevKeys.
	DevKeysFile string

	// OnReload, if set, is called after every reload of a key file with
	// its error (nil on success), for metrics. It is not a flag.
	OnReload func(error)
}

// source is one kind of keyring: its settings, flags, checks and opening.
type source interface {
	// kind names the source in logs: "file", "vault".
	kind() string
	// flag is the flag that selects the source, for messages.
	flag() string
	register(fs *flag.FlagSet)
	configured() bool
	validate() error
	open(ctx context.Context, c *Config, logger *slog.Logger) (opened, error)
}

// opened is an open keyring with what stops its background work and a
// line for logs.
type opened struct {
	kr     keyring.Keyring
	closer io.Closer
	desc   string
}

// sources lists the key sources. A new source is a new file with its type
// and a line here (and its field in Config).
func (c *Config) sources() []source {
	return []source{&c.File, &c.Vault}
}

// Default returns a Config with the defaults of the flags (a key file is
// reloaded every DefaultKeysReload) and nothing configured.
func Default() Config {
	return Config{File: FileSource{Reload: DefaultKeysReload}}
}

// Register adds the flags of every key source and of the data subject
// store to fs. Their environment twins are named by [EnvName] and noted in
// the usage text of every flag of fs.
func (c *Config) Register(fs *flag.FlagSet) {
	c.Subjects.register(fs)
	for _, s := range c.sources() {
		s.register(fs)
	}
	AnnotateUsage(fs)
}

// source returns the configured source, or nil.
func (c *Config) source() source {
	for _, s := range c.sources() {
		if s.configured() {
			return s
		}
	}
	return nil
}

// Source names the keyring Open would open, for logs: "file", "vault",
// ... or "dev-file", or "" when none is configured.
func (c *Config) Source() string {
	if s := c.source(); s != nil {
		return s.kind()
	}
	if c.DevKeysFile != "" {
		return DevFileSource
	}
	return ""
}

// DevFileSource is what Source returns when the development key file is
// used.
const DevFileSource = "dev-file"

// Configured reports whether a key source is configured (not counting the
// development key file).
func (c *Config) Configured() bool { return c.source() != nil }

// Validate reports contradictory or missing settings without opening
// anything: at most one source, each source's own settings, and the data
// subject store's.
func (c *Config) Validate() error {
	var set []string
	for _, s := range c.sources() {
		if s.configured() {
			set = append(set, s.flag())
		}
	}
	if len(set) > 1 {
		return fmt.Errorf("keyconfig: %s are both set; choose one keyring", strings.Join(set, " and "))
	}
	for _, s := range c.sources() {
		if err := s.validate(); err != nil {
			return err
		}
	}
	if c.Source() == "" {
		return errors.New("keyconfig: no keyring configured: set " + c.flagList())
	}
	return c.Subjects.validate(c)
}

// flagList names the flags that select a source: "--keys-file or --vault-addr".
func (c *Config) flagList() string {
	var names []string
	for _, s := range c.sources() {
		names = append(names, s.flag())
	}
	return strings.Join(names, " or ")
}

// Keys is an open keyring. Close it when done: it stops the key file's
// reloading and Vault token renewal.
type Keys struct {
	// Keyring is the keyring, with the data subject keys of the store
	// when one is configured (then it is a *subject.Keyring).
	Keyring keyring.Keyring
	// Source is Config.Source: "file", "vault", "dev-file", ...
	Source string
	// Description says what was opened, for logs, e.g.
	// "key file keys.json" or "Vault transit at https://vault:8200, key temporal".
	Description string

	closers []io.Closer
}

// Close stops the keyring's background work.
func (k *Keys) Close() error {
	if k == nil {
		return nil
	}
	var errs []error
	for i := len(k.closers) - 1; i >= 0; i-- {
		errs = append(errs, k.closers[i].Close())
	}
	k.closers = nil
	return errors.Join(errs...)
}

// Open validates c and opens the configured keyring, adds the data subject
// store when one is configured, and returns them ready. With no source
// configured it opens the development key file (DevKeysFile), created when
// missing, and logs a warning; call CheckDevKeys first to apply the policy.
func (c *Config) Open(ctx context.Context, logger *slog.Logger) (*Keys, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o, err := c.openBase(ctx, logger)
	if err != nil {
		return nil, err
	}
	keys := &Keys{Keyring: o.kr, Source: c.Source(), Description: o.desc, closers: []io.Closer{o.closer}}
	store, err := c.Subjects.open(ctx, o.kr, c, false)
	if err != nil {
		keys.Close()
		return nil, err
	}
	if store != nil {
		if keys.Keyring, err = wrapSubjects(o.kr, store); err != nil {
			keys.Close()
			return nil, err
		}
		keys.Description += ", data subject keys in the " + store.Name() + " store"
	}
	return keys, nil
}

// openBase opens the configured source, or the development key file.
func (c *Config) openBase(ctx context.Context, logger *slog.Logger) (opened, error) {
	if s := c.source(); s != nil {
		return s.open(ctx, c, logger)
	}
	created, err := EnsureKeyFile(c.DevKeysFile)
	if err != nil {
		return opened{}, err
	}
	logger.Warn("keyring: using a DEVELOPMENT key file; do not use it for real data (set "+c.flagList()+")",
		"file", c.DevKeysFile, "created", created)
	dev := FileSource{Path: c.DevKeysFile, Reload: c.File.Reload}
	o, err := dev.open(ctx, c, logger)
	o.desc = "development " + o.desc
	return o, err
}

// ValidateSubjects reports missing or contradictory data subject store
// settings, as Validate does, without asking for a keyring.
func (c *Config) ValidateSubjects() error { return c.Subjects.validate(c) }

// OpenSubjectStore opens only the data subject store, for `keys shred`:
// the keyring is opened too only when the store lives in it (Vault). Close
// the returned closer when done.
func (c *Config) OpenSubjectStore(ctx context.Context, logger *slog.Logger) (subject.Store, io.Closer, error) {
	return c.openSubjectStore(ctx, logger, false)
}

// InitSubjectStore creates the data subject store, for `keys
// init-subject-store`, as OpenSubjectStore opens it.
func (c *Config) InitSubjectStore(ctx context.Context, logger *slog.Logger) (subject.Store, io.Closer, error) {
	return c.openSubjectStore(ctx, logger, true)
}

func (c *Config) openSubjectStore(ctx context.Context, logger *slog.Logger, create bool) (subject.Store, io.Closer, error) {
	if c.Subjects.Store == "" {
		return nil, nil, fmt.Errorf("keyconfig: %s (--subject-store) is required: dir or vault", EnvName("subject-store"))
	}
	if err := c.ValidateSubjects(); err != nil {
		return nil, nil, err
	}
	keys := &Keys{}
	var base keyring.Keyring
	if c.Subjects.needsKeyring() {
		if err := c.Validate(); err != nil {
			return nil, nil, err
		}
		o, err := c.openBase(ctx, logger)
		if err != nil {
			return nil, nil, err
		}
		keys.closers = append(keys.closers, o.closer)
		base = o.kr
	}
	store, err := c.Subjects.open(ctx, base, c, create)
	if err != nil {
		keys.Close()
		return nil, nil, err
	}
	return store, keys, nil
}

// wrapSubjects returns base with the data subject keys of store.
func wrapSubjects(base keyring.Keyring, store subject.Store) (keyring.Keyring, error) {
	kr, err := subject.New(base, store, subject.Options{})
	if err != nil {
		return nil, fmt.Errorf("keyconfig: %w", err)
	}
	return kr, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
