package serverflags_test

import (
	"errors"
	"os/exec"
	"regexp"
	"slices"
	"testing"

	"github.com/envelopecodec/envelope/deploy/internal/serverflags"
)

// TestFlagsMatchTheServer checks the flags the deploy artifacts may use
// against `codec-server --help`, and that --help names the environment
// twin this package derives for each.
func TestFlagsMatchTheServer(t *testing.T) {
	bin := serverflags.BuildBinary(t)
	help, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("codec-server --help: %v\n%s", err, help)
	}
	var server []string
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllSubmatch(help, -1) {
		server = append(server, string(m[1]))
	}
	if len(server) == 0 {
		t.Fatalf("no flags in --help:\n%s", help)
	}
	for _, f := range serverflags.Flags {
		if !slices.Contains(server, f) {
			t.Errorf("--%s is not a codec-server flag", f)
			continue
		}
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(serverflags.Env(f)) + `\b`).Match(help) {
			t.Errorf("--help does not name %s as the twin of --%s", serverflags.Env(f), f)
		}
	}
	for _, f := range server {
		if !slices.Contains(serverflags.Flags, f) {
			t.Errorf("--%s is new in the server; add it to serverflags.Flags (the deploy artifacts check against this list)", f)
		}
	}
}

// TestHealthCheckSubcommand checks that the image's health check command
// parses: `healthcheck --url URL` against a closed port fails with exit
// code 1 (unhealthy), not 2 (usage error).
func TestHealthCheckSubcommand(t *testing.T) {
	bin := serverflags.BuildBinary(t)
	args := slices.Clone(serverflags.HealthCheck[1:])
	args[len(args)-1] = "http://127.0.0.1:1/healthz"
	err := exec.Command(bin, args...).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("healthcheck against a closed port: %v, want exit code 1", err)
	}
}

func TestEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ flag, env string }{
		{"listen", "CODEC_SERVER_LISTEN"},
		{"cors-origin", "CODEC_SERVER_CORS_ORIGIN"},
		{"vault-k8s-role", "CODEC_SERVER_VAULT_K8S_ROLE"},
		{"vault-addr", "VAULT_ADDR"},
		{"vault-cacert", "VAULT_CACERT"},
	} {
		if got := serverflags.Env(tc.flag); got != tc.env {
			t.Errorf("Env(%q) = %q, want %q", tc.flag, got, tc.env)
		}
		if f, ok := serverflags.FlagForEnv(tc.env); !ok || f != tc.flag {
			t.Errorf("FlagForEnv(%q) = %q, %v, want %q", tc.env, f, ok, tc.flag)
		}
	}
	if _, ok := serverflags.FlagForEnv("CODEC_SERVER_NO_SUCH_FLAG"); ok {
		t.Error("FlagForEnv accepts an unknown variable")
	}
}
