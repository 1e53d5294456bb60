package keyconfig

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// EnvPrefix starts the environment twin of every flag, except the Vault
// flags that have Vault's own names (see [EnvName]).
const EnvPrefix = "CODEC_SERVER_"

// vaultEnv maps the flags whose twins are Vault's standard variables.
var vaultEnv = map[string]string{
	"vault-addr":      "VAULT_ADDR",
	"vault-token":     "VAULT_TOKEN",
	"vault-namespace": "VAULT_NAMESPACE",
	"vault-cacert":    "VAULT_CACERT",
}

// EnvName returns the environment variable that stands in for the flag
// --name: CODEC_SERVER_ followed by the name in upper case with '-' as '_'
// (--foo-bar is CODEC_SERVER_FOO_BAR), except --vault-addr, --vault-token,
// --vault-namespace and --vault-cacert, whose twins are VAULT_ADDR,
// VAULT_TOKEN, VAULT_NAMESPACE and VAULT_CACERT.
func EnvName(name string) string {
	if v, ok := vaultEnv[name]; ok {
		return v
	}
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Repeatable is implemented by flag values that may be given several times.
// Their environment twin holds the values separated by commas.
type Repeatable interface {
	flag.Value
	// Repeatable is a marker method.
	Repeatable()
}

// StringList is a repeatable string flag: each use adds a value.
type StringList []string

// String implements flag.Value.
func (l *StringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set implements flag.Value: it appends v.
func (l *StringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// Repeatable implements [Repeatable].
func (l *StringList) Repeatable() {}

// AnnotateUsage appends "(env NAME)" to the usage text of every flag in fs
// that does not mention its environment twin yet, so --help lists them.
func AnnotateUsage(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(f.Name)
		if !strings.Contains(f.Usage, env) {
			f.Usage += " (env " + env + ")"
		}
	})
}

// ApplyEnv sets every flag of fs that was not given on the command line
// from its environment twin ([EnvName]) when lookup finds one. A
// [Repeatable] flag takes a comma-separated list. Call it after fs.Parse;
// flags on the command line win over the environment. Errors name the
// variable, never its value (it may be a secret).
func ApplyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var bad []string
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := EnvName(f.Name)
		v, ok := lookup(env)
		if !ok {
			return
		}
		values := []string{v}
		if _, rep := f.Value.(Repeatable); rep {
			values = SplitList(v)
		}
		for _, v := range values {
			if err := fs.Set(f.Name, v); err != nil {
				msg := fmt.Sprintf("environment variable %s (for --%s): invalid value", env, f.Name)
				if why := err.Error(); v == "" || !strings.Contains(why, v) {
					msg += " (" + why + ")"
				}
				bad = append(bad, msg)
				return
			}
		}
	})
	if len(bad) == 0 {
		return nil
	}
	return &EnvError{Problems: bad}
}

// EnvError is ApplyEnv's error: environment variables whose values their
// flags refuse. Its message is one line and names the variables, never
// their values (they may be secrets).
type EnvError struct {
	// Problems says what is wrong, one entry a variable.
	Problems []string
}

func (e *EnvError) Error() string { return strings.Join(e.Problems, "; ") }

// Parse parses args into fs and then applies the environment with
// [ApplyEnv].
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return ApplyEnv(fs, lookup)
}

// SplitList splits a comma-separated flag or environment value into its
// non-empty, trimmed items, as the list flags of this package and of the
// codec server are read.
func SplitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// FromEnv returns the Config the environment alone describes: [Default]
// with every setting whose environment twin lookup finds, read through the
// same flag values as [Parse]. Errors name the variable, never its value.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("keyconfig", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs)
	if err := ApplyEnv(fs, lookup); err != nil {
		return c, fmt.Errorf("keyconfig: %w", err)
	}
	return c, nil
}
