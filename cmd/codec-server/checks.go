package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/envelopecodec/envelope/keyconfig"
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
	env := keyconfig.EnvName("keys-file")
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

// parseCommand parses a subcommand's args into fs, and with lookup the
// environment twins of its flags too. It is the one way the subcommands
// handle a bad flag or variable: the flag package prints a bad flag with
// the usage, and a bad environment value is printed here in one line
// naming the command; either exits 2. --help exits 0. ok is true when the
// command should go on.
func parseCommand(fs *flag.FlagSet, args []string, lookup func(string) (string, bool), stderr io.Writer) (code int, ok bool) {
	var err error
	if lookup != nil {
		err = keyconfig.Parse(fs, args, lookup)
	} else {
		err = fs.Parse(args)
	}
	var envErr *keyconfig.EnvError
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		return 0, false
	case errors.As(err, &envErr):
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
	}
	return 2, false
}
