package keyconfig

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/envelopecodec/envelope/internal/loopback"
)

// NoKeyringError is the error a command gives when no keyring is configured
// and it may not fall back to the development key file, because why (for
// example "--listen 0.0.0.0:8081 is not a loopback address"). It names the
// settings the command expected.
func NoKeyringError(why string) error {
	return fmt.Errorf("keyconfig: no keyring configured and %s, so the development key file is not used: "+
		"set %s (--keys-file) to a key file, or %s (--vault-addr) and %s (--vault-key) for Vault transit",
		why, EnvName("keys-file"), EnvName("vault-addr"), EnvName("vault-key"))
}

// DevKeysUse describes where a program would use the development key
// file, for [Config.CheckDevKeys].
type DevKeysUse struct {
	// Address is where the program serves (the codec server's --listen)
	// or what it talks to (a Temporal client's address), with or without
	// a port.
	Address string
	// AddressName names Address in messages: "--listen", "the Temporal
	// address".
	AddressName string
	// Auth, when not "", says which authentication is configured, e.g.
	// "--insecure-no-auth is set" or "Temporal credentials (an API key)
	// are configured": a deployment, not the local default.
	Auth string
	// LookupEnv reads the environment (KUBERNETES_SERVICE_HOST); nil
	// reads nothing.
	LookupEnv func(string) (string, bool)
	// Environ is the environment as KEY=VALUE entries, to find unknown
	// CODEC_SERVER_* variables; nil checks none.
	Environ []string
	// Known reports whether a CODEC_SERVER_* variable is one the program
	// reads. Default: the variables of the Config's own flags, and any
	// that does not look like a keyring setting (CODEC_SERVER_KEY*,
	// CODEC_SERVER_VAULT*, CODEC_SERVER_SUBJECT*), since a client may
	// share its environment with a codec server.
	Known func(name string) bool
}

// CheckDevKeys is the one development key policy. It returns nil when a
// source is configured or no DevKeysFile is set, or when the development
// key file may be used: on a loopback address, without authentication,
// with no unknown CODEC_SERVER_* variable (most likely a misspelled
// CODEC_SERVER_KEYS_FILE) and outside Kubernetes, where the file would
// vanish with the pod. Otherwise the error ([NoKeyringError]) says why and
// names the settings expected.
func (c *Config) CheckDevKeys(u DevKeysUse) error {
	if c.Source() != DevFileSource {
		return nil
	}
	if u.Auth != "" {
		return NoKeyringError(u.Auth + " (a deployment, not the local default)")
	}
	if !loopback.Host(u.Address) {
		return NoKeyringError(fmt.Sprintf("%s %s is not a loopback address: not on this machine", u.AddressName, u.Address))
	}
	known := u.Known
	if known == nil {
		own := c.envNames()
		known = func(name string) bool {
			if own[name] {
				return true
			}
			for _, p := range []string{"KEY", "VAULT", "SUBJECT"} {
				if strings.HasPrefix(name, EnvPrefix+p) {
					return false
				}
			}
			return true
		}
	}
	if unknown := unknownEnv(known, u.Environ); len(unknown) > 0 {
		return NoKeyringError("the environment sets " + strings.Join(unknown, ", ") + ", which name no setting (misspelled?)")
	}
	if u.LookupEnv != nil {
		if _, ok := u.LookupEnv("KUBERNETES_SERVICE_HOST"); ok {
			return NoKeyringError("it runs in a Kubernetes pod (KUBERNETES_SERVICE_HOST is set)")
		}
	}
	return nil
}

// envNames returns the environment twins of the Config's flags.
func (c *Config) envNames() map[string]bool {
	probe := Default()
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	probe.Register(fs)
	return FlagEnvNames(fs)
}

// FlagEnvNames returns the environment twins of the flags of fs.
func FlagEnvNames(fs *flag.FlagSet) map[string]bool {
	known := make(map[string]bool)
	fs.VisitAll(func(f *flag.Flag) { known[EnvName(f.Name)] = true })
	return known
}

// unknownEnv returns, sorted, the names of the variables in environ
// (KEY=VALUE entries, as os.Environ returns them) that start with
// EnvPrefix but are not known: most likely misspellings, such as
// CODEC_SERVER_KEY_FILE for CODEC_SERVER_KEYS_FILE.
func unknownEnv(known func(string) bool, environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !known(name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
