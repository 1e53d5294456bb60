package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/envelopecodec/envelope/internal/keyflags"
)

// checkEmptyKeysFile refuses a key file path that was given but is empty
// (--keys-file "" or CODEC_SERVER_KEYS_FILE=""): silently falling back to
// the development key file would hide a broken deployment.
func checkEmptyKeysFile(fset *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	// fset.Visit cannot tell: ApplyEnv sets flags from the environment.
	given := false
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		given = given || strings.HasPrefix(a, "-") && name == "keys-file"
	}
	env := keyflags.EnvName("keys-file")
	// With Vault configured no key file is wanted, and an empty variable
	// cannot fall back to the development key file.
	if v := fset.Lookup("vault-addr"); v != nil && v.Value.String() != "" {
		return nil
	}
	if f := fset.Lookup("keys-file"); f != nil && f.Value.String() == "" {
		if given {
			return errors.New("--keys-file is empty: give the path of a key file (create one with: codec-server keys new --file F)")
		}
		if v, ok := lookup(env); ok && v == "" {
			return fmt.Errorf("%s is set but empty: give the path of a key file, or unset it", env)
		}
	}
	return nil
}

// checkKeyFile says in one line what is wrong with a key file path before
// anything opens it: missing, a directory, unreadable.
func checkKeyFile(name, path string) error {
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
