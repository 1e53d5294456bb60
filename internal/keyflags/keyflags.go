// Package keyflags holds the command-line flags that choose a keyring, shared
// by cmd/codec-server and the examples so they open keys the same way: a
// local key file (reloaded when it changes) or Vault transit.
//
// Every flag has an environment twin (see [EnvName]): call [Parse] (or
// fs.Parse and then [ApplyEnv]) so that unset flags take their value from
// the environment. Library packages never read flags or the environment;
// this package is for commands only.
//
//	var ko keyflags.Options
//	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
//	ko.Register(fs)
//	if err := keyflags.Parse(fs, os.Args[1:], os.LookupEnv); err != nil { ... }
//	kr, closer, err := ko.Open(ctx, logger)
//	defer closer.Close()
package keyflags

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// DefaultDevKeysFile is where commands keep the development key file when no
// keyring is configured, relative to the working directory. The repository
// ignores .data/.
const DefaultDevKeysFile = ".data/dev-keyring.json"

// DefaultKeysReload is how often a key file is checked for changes.
const DefaultKeysReload = 10 * time.Second

// Options are the keyring flags. Register them on a flag set, parse, then
// Open. The zero value is valid (no keyring configured).
type Options struct {
	// KeysFile is a JSON key file (--keys-file).
	KeysFile string
	// KeysReload is how often the key file is checked for changes
	// (--keys-reload); 0 turns reloading off.
	KeysReload time.Duration

	// Vault holds the Vault transit settings (--vault-*). Vault is used when
	// Vault.Address is set.
	Vault vault.Config

	// DevKeysFile, when set, is created (mode 0600) or reused when neither
	// --keys-file nor --vault-addr is given, and Open logs a warning that a
	// development key file is in use. It is not a flag: commands set it
	// (usually to DefaultDevKeysFile) to get a working default.
	DevKeysFile string

	// OnReload, if set, is called after every reload of the key file with
	// its error (nil on success), for metrics. It is not a flag.
	OnReload func(error)
}

// Register adds the keyring flags to fs. Their environment twins are named
// by [EnvName] and noted in their usage text.
func (o *Options) Register(fs *flag.FlagSet) {
	if o.KeysReload == 0 {
		o.KeysReload = DefaultKeysReload
	}
	fs.StringVar(&o.KeysFile, "keys-file", o.KeysFile, "JSON key file with the key-encryption keys (create one with: codec-server keys new --file F)")
	fs.DurationVar(&o.KeysReload, "keys-reload", o.KeysReload, "how often to reload the key file when it changes; 0 turns reloading off")

	v := &o.Vault
	fs.StringVar(&v.Address, "vault-addr", v.Address, "Vault address, e.g. https://vault:8200; selects the Vault transit keyring")
	fs.StringVar(&v.Token, "vault-token", v.Token, "Vault token (prefer the environment variable to the flag: flags show in ps)")
	fs.StringVar(&v.Namespace, "vault-namespace", v.Namespace, "Vault Enterprise namespace")
	fs.StringVar(&v.CACert, "vault-cacert", v.CACert, "PEM file of the CA that signed Vault's certificate")
	fs.StringVar(&v.Mount, "vault-transit-mount", v.Mount, "mount path of the transit secrets engine (default \"transit\")")
	fs.StringVar(&v.KeyName, "vault-key", v.KeyName, "transit key name, or a template with {namespace}, e.g. temporal-{namespace}")
	fs.Var((*StringList)(&v.PreviousKeys), "vault-previous-keys", "earlier transit key names (or templates) that still decrypt; payloads naming any other key of the mount are refused (repeatable)")
	fs.StringVar(&v.AppRoleMount, "vault-approle-mount", v.AppRoleMount, "mount path of the AppRole auth method (default \"approle\")")
	fs.StringVar(&v.AppRoleRoleID, "vault-approle-role-id", v.AppRoleRoleID, "AppRole role ID, to log in with AppRole")
	fs.StringVar(&v.AppRoleSecretID, "vault-approle-secret-id", v.AppRoleSecretID, "AppRole secret ID (prefer the environment variable)")
	fs.StringVar(&v.KubernetesMount, "vault-k8s-mount", v.KubernetesMount, "mount path of the Kubernetes auth method (default \"kubernetes\")")
	fs.StringVar(&v.KubernetesRole, "vault-k8s-role", v.KubernetesRole, "Vault role to log in with the pod's service account token")
	fs.StringVar(&v.KubernetesTokenPath, "vault-k8s-token-path", v.KubernetesTokenPath, "service account token file (default /var/run/secrets/kubernetes.io/serviceaccount/token)")
	fs.DurationVar(&v.Timeout, "vault-timeout", v.Timeout, "timeout of one Vault call (default 5s)")
	fs.Var(retriesValue{&v.MaxRetries}, "vault-max-retries", "retries of a failed Vault call; 0 turns retries off")
	AnnotateUsage(fs)
}

// Source describes the keyring Open would open, for logs: "vault",
// "file" or "dev-file", or "" when none is configured.
func (o *Options) Source() string {
	switch {
	case o.Vault.Address != "":
		return "vault"
	case o.KeysFile != "":
		return "file"
	case o.DevKeysFile != "":
		return "dev-file"
	}
	return ""
}

// Validate reports contradictory or missing settings without opening
// anything.
func (o *Options) Validate() error {
	if o.Vault.Address != "" && o.KeysFile != "" {
		return errors.New("keyflags: --keys-file and --vault-addr are both set; choose one keyring")
	}
	if o.Vault.Address != "" && o.Vault.KeyName == "" {
		return errors.New("keyflags: --vault-key is required with --vault-addr")
	}
	if o.KeysReload < 0 {
		return errors.New("keyflags: --keys-reload must not be negative")
	}
	if o.Source() == "" {
		return errors.New("keyflags: no keyring configured: set --keys-file or --vault-addr")
	}
	return nil
}

// Open opens the configured keyring: Vault when --vault-addr is set, else
// the key file, reloaded every KeysReload until the closer is closed, else
// the development key file (created when missing). The returned closer
// stops background work (file watching, Vault token renewal); it is never
// nil when err is nil.
func (o *Options) Open(ctx context.Context, logger *slog.Logger) (keyring.Keyring, io.Closer, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	if o.Vault.Address != "" {
		cfg := o.Vault
		if cfg.Logger == nil {
			cfg.Logger = logger
		}
		vk, err := vault.New(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("keyflags: open Vault keyring at %s: %w", cfg.Address, err)
		}
		logger.Info("keyring: Vault transit", "addr", cfg.Address, "key", cfg.KeyName)
		return vk, vk, nil
	}
	path := o.KeysFile
	if path == "" {
		path = o.DevKeysFile
		created, err := EnsureKeyFile(path)
		if err != nil {
			return nil, nil, err
		}
		logger.Warn("keyring: using a DEVELOPMENT key file; do not use it for real data (set --keys-file or --vault-addr)",
			"file", path, "created", created)
	}
	f, err := keyring.OpenFile(path, keyring.FileOptions{Logger: logger, OnReload: o.OnReload})
	if err != nil {
		return nil, nil, fmt.Errorf("keyflags: %w", err)
	}
	logger.Info("keyring: key file", "file", path, "active_key_id", f.ActiveKeyID(), "reload", o.KeysReload.String())
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if o.KeysReload > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Watch(wctx, o.KeysReload)
		}()
	}
	return f, closerFunc(func() error { cancel(); wg.Wait(); return nil }), nil
}

// EnsureKeyFile creates a key file with one fresh key at path (mode 0600,
// parent folders 0700) unless one exists. It reports whether it created
// one.
func EnsureKeyFile(path string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("keyflags: key file %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("keyflags: create folder for %s: %w", path, err)
	}
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		return false, fmt.Errorf("keyflags: %w", err)
	}
	return true, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
