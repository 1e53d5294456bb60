package keyconfig

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/envelopecodec/envelope/keyring/vault"
)

// VaultSource is Vault's transit secrets engine (keyring/vault).
type VaultSource struct {
	vault.Config
}

func (s *VaultSource) kind() string { return "vault" }

func (s *VaultSource) flag() string { return "--vault-addr" }

func (s *VaultSource) register(fs *flag.FlagSet) {
	v := &s.Config
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
	fs.Var(retriesValue{&v.MaxRetries}, "vault-max-retries", "retries of a failed Vault call; 0 turns retries off (default 2)")
}

func (s *VaultSource) configured() bool { return s.Address != "" }

func (s *VaultSource) validate() error {
	if s.Address != "" && s.KeyName == "" {
		return errors.New("keyconfig: --vault-key is required with --vault-addr")
	}
	return nil
}

func (s *VaultSource) open(ctx context.Context, _ *Config, logger *slog.Logger) (opened, error) {
	cfg := s.Config
	if cfg.Logger == nil {
		cfg.Logger = logger
	}
	vk, err := vault.New(ctx, cfg)
	if err != nil {
		return opened{}, fmt.Errorf("keyconfig: open Vault keyring at %s: %w", cfg.Address, err)
	}
	logger.Info("keyring: Vault transit", "addr", cfg.Address, "key", cfg.KeyName)
	return opened{kr: vk, closer: vk, desc: "Vault transit at " + cfg.Address + ", key " + cfg.KeyName}, nil
}

// retriesValue is the --vault-max-retries flag: a number of retries where
// 0 means none. vault.Config.MaxRetries says 0 for its default and -1 for
// none; the flag translates.
type retriesValue struct{ p *int }

// String returns the number of retries the setting gives.
func (r retriesValue) String() string {
	switch {
	case r.p == nil || *r.p == 0:
		return strconv.Itoa(vault.DefaultMaxRetries)
	case *r.p < 0:
		return "0"
	}
	return strconv.Itoa(*r.p)
}

// Set parses a number of retries, 0 or more.
func (r retriesValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want a number of retries, 0 or more")
	}
	if n == 0 {
		n = -1
	}
	*r.p = n
	return nil
}
