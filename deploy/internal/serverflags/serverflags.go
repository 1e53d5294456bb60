// Package serverflags records the codec-server command line that the deploy
// artifacts rely on: flag names, their environment twins, the listen port
// and the health check. The tests of compose/ and kubernetes/ check the
// artifacts against it, and this package's own test checks it against
// `codec-server --help` of the binary built from this repository.
package serverflags

import "strings"

// Flags lists the codec-server flags (`codec-server --help`); the deploy
// artifacts may set only these.
var Flags = []string{
	"listen", "default-namespace", "insecure-no-auth", "zlib",
	"namespace-alias", "refuse-v1", "refuse-legacy", "require-encryption",
	"cors-origin", "cors-max-age",
	"jwks-url", "oidc-issuer", "jwks-file", "jwt-issuer", "jwt-audience", "jwt-algorithms", "jwt-permissions-claim", "jwt-skew",
	"jwt-permissions-regex", "jwt-max-lifetime",
	"tls-cert", "tls-key", "tls-client-ca", "tls-reload", "client-permission",
	"max-body-bytes", "max-payloads", "max-metadata-entries", "max-inflight-body-bytes", "max-decompressed-bytes", "max-connections",
	"read-header-timeout", "read-timeout", "write-timeout", "idle-timeout", "shutdown-timeout", "shutdown-delay",
	"log-format", "log-level", "metrics", "audit", "audit-log", "audit-flush-interval",
	"keys-file", "keys-reload",
	"subject-store", "subject-dir", "subject-vault-prefix",
	"vault-addr", "vault-token", "vault-namespace", "vault-cacert", "vault-transit-mount", "vault-key", "vault-previous-keys",
	"vault-approle-mount", "vault-approle-role-id", "vault-approle-secret-id",
	"vault-k8s-mount", "vault-k8s-role", "vault-k8s-token-path", "vault-timeout", "vault-max-retries",
	"aws-kms-key", "aws-kms-previous-keys",
}

// vaultEnv maps the flags whose environment twin is Vault's own variable.
var vaultEnv = map[string]string{
	"vault-addr":      "VAULT_ADDR",
	"vault-token":     "VAULT_TOKEN",
	"vault-namespace": "VAULT_NAMESPACE",
	"vault-cacert":    "VAULT_CACERT",
}

// Env returns the environment variable that sets flag: CODEC_SERVER_FOO_BAR
// for --foo-bar, or Vault's own VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE and
// VAULT_CACERT.
func Env(flag string) string {
	if v, ok := vaultEnv[flag]; ok {
		return v
	}
	return "CODEC_SERVER_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// FlagForEnv returns the flag an environment variable sets, and whether it
// is one of [Flags].
func FlagForEnv(name string) (string, bool) {
	for _, f := range Flags {
		if Env(f) == name {
			return f, true
		}
	}
	return "", false
}

// IsFlag reports whether name (without dashes) is one of [Flags].
func IsFlag(name string) bool {
	for _, f := range Flags {
		if f == name {
			return true
		}
	}
	return false
}

const (
	// Port is the port the server listens on inside a container.
	Port = 8081
	// ContainerListen is the --listen value for containers.
	ContainerListen = "0.0.0.0:8081"
	// HealthPath and ReadyPath are the liveness and readiness endpoints.
	HealthPath = "/healthz"
	ReadyPath  = "/readyz"
	// Binary is where the image puts the server.
	Binary = "/codec-server"
)

// HealthCheck is the image's health check command: the binary checking
// itself, since the image has no shell.
var HealthCheck = []string{Binary, "healthcheck", "--url", "http://127.0.0.1:8081" + HealthPath}
