package keyflags

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// NoKeyringError is the error a command gives when no keyring is configured
// and it may not fall back to the development key file, because why (for
// example "--listen 0.0.0.0:8081 is not a loopback address"). It names the
// settings the command expected.
func NoKeyringError(why string) error {
	return fmt.Errorf("keyflags: no keyring configured and %s, so the development key file is not used: "+
		"set %s (--keys-file) to a key file, or %s (--vault-addr) and %s (--vault-key) for Vault transit",
		why, EnvName("keys-file"), EnvName("vault-addr"), EnvName("vault-key"))
}

// UnknownEnv returns, sorted, the names of the variables in environ
// (KEY=VALUE entries, as os.Environ returns them) that start with EnvPrefix
// but are the environment twin of no flag in fs: most likely misspellings,
// such as CODEC_SERVER_KEY_FILE for CODEC_SERVER_KEYS_FILE.
func UnknownEnv(fs *flag.FlagSet, environ []string) []string {
	known := make(map[string]bool)
	fs.VisitAll(func(f *flag.Flag) { known[EnvName(f.Name)] = true })
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !known[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// InKubernetes reports why the process looks like it runs in a Kubernetes
// pod ("" if it does not): KUBERNETES_SERVICE_HOST is set. A development key
// file there would live in the pod's writable layer and vanish with it,
// taking every payload sealed under it along. Other containers are not
// refused: a loopback-only server in one is a development container
// (Codespaces, toolbox), and the server's image listens on 0.0.0.0, which
// refuses the development key file anyway.
func InKubernetes(lookup func(string) (string, bool)) string {
	if _, ok := lookup("KUBERNETES_SERVICE_HOST"); ok {
		return "it runs in a Kubernetes pod (KUBERNETES_SERVICE_HOST is set)"
	}
	return ""
}
