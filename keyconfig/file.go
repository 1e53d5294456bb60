package keyconfig

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// DefaultKeysReload is how often a key file is checked for changes.
const DefaultKeysReload = 10 * time.Second

// FileSource is a local JSON key file (keyring.OpenFile), reloaded when it
// changes.
type FileSource struct {
	// Path is the key file (--keys-file).
	Path string
	// Reload is how often the key file is checked for changes
	// (--keys-reload); 0 turns reloading off.
	Reload time.Duration
}

func (s *FileSource) kind() string { return "file" }

func (s *FileSource) flag() string { return "--keys-file" }

func (s *FileSource) register(fs *flag.FlagSet) {
	fs.StringVar(&s.Path, "keys-file", s.Path, "JSON key file with the key-encryption keys (create one with: codec-server keys new --file F)")
	fs.DurationVar(&s.Reload, "keys-reload", s.Reload, "how often to reload the key file when it changes; 0 turns reloading off")
}

func (s *FileSource) configured() bool { return s.Path != "" }

func (s *FileSource) validate() error {
	if s.Reload < 0 {
		return errors.New("keyconfig: --keys-reload must not be negative")
	}
	return nil
}

func (s *FileSource) open(ctx context.Context, c *Config, logger *slog.Logger) (opened, error) {
	if err := CheckKeyFile("--keys-file", s.Path); err != nil {
		return opened{}, err
	}
	f, err := keyring.OpenFile(s.Path, keyring.FileOptions{Logger: logger, OnReload: c.OnReload})
	if err != nil {
		return opened{}, fmt.Errorf("keyconfig: %w", err)
	}
	logger.Info("keyring: key file", "file", s.Path, "active_key_id", f.ActiveKeyID(), "reload", s.Reload.String())
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if s.Reload > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Watch(wctx, s.Reload)
		}()
	}
	stop := closerFunc(func() error { cancel(); wg.Wait(); return nil })
	return opened{kr: f, closer: stop, desc: "key file " + s.Path}, nil
}

// CheckKeyFile says in one line what is wrong with a key file path before
// anything opens it: missing, a directory, unreadable. name is the setting
// that gave the path, e.g. "--keys-file".
func CheckKeyFile(name, path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: no such file (create one with: codec-server keys new --file %s)", name, path, path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s %s: permission denied", name, path)
	case err != nil:
		return fmt.Errorf("%s %s: %w", name, path, err)
	case fi.IsDir():
		return fmt.Errorf("%s %s is a directory, want a key file", name, path)
	}
	return nil
}

// EnsureKeyFile creates a key file with one fresh key at path (mode 0600,
// parent folders 0700) unless one exists. It reports whether it created
// one.
func EnsureKeyFile(path string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("keyconfig: key file %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("keyconfig: create folder for %s: %w", path, err)
	}
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		return false, fmt.Errorf("keyconfig: %w", err)
	}
	return true, nil
}
