package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/envelopecodec/envelope/codec"
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

// commandFlags is the flag set of a subcommand: errors to stderr, and
// -h prints usage followed by the flags.
func commandFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	return fs
}

// namespaceFlag registers --namespace on fs, defaulting to
// $TEMPORAL_NAMESPACE (as the temporal CLI does) or codec.DefaultNamespace.
func namespaceFlag(fs *flag.FlagSet, lookup func(string) (string, bool), help string) *string {
	ns := codec.DefaultNamespace
	if v, ok := lookup("TEMPORAL_NAMESPACE"); ok && v != "" {
		ns = v
	}
	return fs.String("namespace", ns, help)
}

// parseCommand parses a subcommand's args into fs, and with lookup the
// environment twins of its flags too, and reports a bad flag or variable
// with [usageExit]. ok is true when the command should go on; else code
// is its exit status.
func parseCommand(fs *flag.FlagSet, args []string, lookup func(string) (string, bool), stderr io.Writer) (code int, ok bool) {
	if err := parseFlags(fs, args, lookup); err != nil {
		return usageExit(fs.Name(), err, stderr), false
	}
	return 0, true
}

// parseFlags parses args into fs, and with lookup the environment twins of
// its flags too ([keyconfig.Parse]). It is the one way the server and its
// subcommands parse their flags: an error the flag package has already
// printed (the bad flag, then the usage) comes back marked so that
// [usageExit] does not print it again.
func parseFlags(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	var err error
	if lookup != nil {
		err = keyconfig.Parse(fs, args, lookup)
	} else {
		err = fs.Parse(args)
	}
	var envErr *keyconfig.EnvError
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.As(err, &envErr) {
		return err
	}
	return printedError{err}
}

// printedError is a flag-parse error the flag package has printed already.
type printedError struct{ error }

func (e printedError) Unwrap() error { return e.error }

// usageExit says a usage error of the command name in one line on stderr
// ("codec-server decode: ..."), unless the flag package has printed it,
// and returns the exit status: 0 after --help, else 2.
func usageExit(name string, err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if !errors.As(err, new(printedError)) {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	return 2
}
