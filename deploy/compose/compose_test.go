package compose_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/envelopecodec/envelope/deploy/internal/serverflags"
)

// load reads compose.yaml with compose-go, the library docker compose uses:
// schema validation, interpolation and normalization included.
func load(t *testing.T, env ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnv(env),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func env(s types.ServiceConfig, key string) string {
	if v, ok := s.Environment[key]; ok && v != nil {
		return *v
	}
	return ""
}

func TestServices(t *testing.T) {
	t.Parallel()
	p := load(t)
	got := p.ServiceNames()
	slices.Sort(got)
	want := []string{"codec-server", "temporal", "temporal-ui", "vault", "vault-init"}
	if !slices.Equal(got, want) {
		t.Fatalf("services %q, want %q", got, want)
	}
	for _, s := range p.Services {
		if s.Image == "" {
			t.Errorf("%s: no image", s.Name)
		}
		if strings.HasSuffix(s.Image, ":latest") || (!strings.Contains(s.Image, ":") && s.Build == nil) {
			t.Errorf("%s: image %q is not pinned to a version", s.Name, s.Image)
		}
	}
}

// TestPublishedPorts: only what a user on this host needs (the UI, the
// codec server the browser calls, Temporal's frontend for workers), and
// only on loopback.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	p := load(t)
	want := map[string][]string{
		"temporal":     {"7233"},
		"temporal-ui":  {"8080"},
		"codec-server": {"8081"},
	}
	for _, s := range p.Services {
		var got []string
		for _, port := range s.Ports {
			got = append(got, port.Published)
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %s published on %q, want 127.0.0.1", s.Name, port.Published, port.HostIP)
			}
		}
		if !slices.Equal(got, want[s.Name]) {
			t.Errorf("%s: published ports %q, want %q", s.Name, got, want[s.Name])
		}
	}
}

func TestHealthChecksAndStartOrder(t *testing.T) {
	t.Parallel()
	p := load(t)

	for _, tc := range []struct {
		service string
		test    []string // nil: any CMD test
	}{
		{"temporal", nil},
		{"vault", nil},
		{"codec-server", append([]string{"CMD"}, serverflags.HealthCheck...)},
	} {
		s := service(t, p, tc.service)
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
			t.Errorf("%s: health check %+v, want an exec-form CMD test", tc.service, hc)
			continue
		}
		if tc.test != nil && !slices.Equal(hc.Test, tc.test) {
			t.Errorf("%s: health check %q, want %q (the Dockerfile's)", tc.service, hc.Test, tc.test)
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
			t.Errorf("%s: health check lacks interval, timeout or retries", tc.service)
		}
	}

	for _, tc := range []struct{ from, to, condition string }{
		{"temporal-ui", "temporal", types.ServiceConditionHealthy},
		{"temporal-ui", "codec-server", types.ServiceConditionHealthy},
		{"codec-server", "vault-init", types.ServiceConditionCompletedSuccessfully},
		{"vault-init", "vault", types.ServiceConditionHealthy},
	} {
		d, ok := service(t, p, tc.from).DependsOn[tc.to]
		if !ok || d.Condition != tc.condition {
			t.Errorf("%s depends on %s with %+v, want condition %s", tc.from, tc.to, d, tc.condition)
		}
	}
}

// TestCodecServer checks the codec server's settings against the services
// it talks to and the UI that calls it.
func TestCodecServer(t *testing.T) {
	t.Parallel()
	p := load(t)
	cs := service(t, p, "codec-server")
	ui := service(t, p, "temporal-ui")
	vault := service(t, p, "vault")

	t.Run("every variable is a codec-server setting", func(t *testing.T) {
		for k := range cs.Environment {
			if _, ok := serverflags.FlagForEnv(k); !ok {
				t.Errorf("%s is not the twin of any codec-server flag", k)
			}
		}
	})

	t.Run("listens on the published container port", func(t *testing.T) {
		if got := env(cs, "CODEC_SERVER_LISTEN"); got != serverflags.ContainerListen {
			t.Errorf("CODEC_SERVER_LISTEN=%q, want %q", got, serverflags.ContainerListen)
		}
		if len(cs.Ports) != 1 || cs.Ports[0].Target != serverflags.Port {
			t.Errorf("ports %+v, want target %d", cs.Ports, serverflags.Port)
		}
	})

	t.Run("the UI's codec endpoint is the published port", func(t *testing.T) {
		u, err := url.Parse(env(ui, "TEMPORAL_CODEC_ENDPOINT"))
		if err != nil || u.Host == "" {
			t.Fatalf("TEMPORAL_CODEC_ENDPOINT %q: %v", env(ui, "TEMPORAL_CODEC_ENDPOINT"), err)
		}
		if u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1" {
			t.Errorf("TEMPORAL_CODEC_ENDPOINT host %q: the browser calls it, so it must be a host-side address", u.Hostname())
		}
		if u.Port() != cs.Ports[0].Published {
			t.Errorf("TEMPORAL_CODEC_ENDPOINT port %s, codec-server published on %s", u.Port(), cs.Ports[0].Published)
		}
		for _, k := range []string{"TEMPORAL_CODEC_PASS_ACCESS_TOKEN", "TEMPORAL_CODEC_INCLUDE_CREDENTIALS"} {
			if _, err := strconv.ParseBool(env(ui, k)); err != nil {
				t.Errorf("%s=%q, want an explicit true or false", k, env(ui, k))
			}
		}
		// The UI sends the token only to an https endpoint: over http,
		// passing it is a no-op and the server cannot require a JWT.
		if u.Scheme == "http" {
			if env(ui, "TEMPORAL_CODEC_PASS_ACCESS_TOKEN") == "true" {
				t.Error("TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true with an http endpoint: the UI never sends the token")
			}
			if env(cs, "CODEC_SERVER_INSECURE_NO_AUTH") != "true" {
				t.Error("http endpoint without --insecure-no-auth: the server would refuse every UI call")
			}
		}
	})

	t.Run("CORS admits exactly the UI's origins", func(t *testing.T) {
		origins := strings.Split(env(cs, "CODEC_SERVER_CORS_ORIGIN"), ",")
		uiPort := ui.Ports[0].Published
		for _, want := range []string{"http://localhost:" + uiPort, "http://127.0.0.1:" + uiPort} {
			if !slices.Contains(origins, want) {
				t.Errorf("CODEC_SERVER_CORS_ORIGIN %q lacks %s", origins, want)
			}
		}
		for _, o := range origins {
			if strings.Contains(o, "*") {
				t.Errorf("wildcard origin %q", o)
			}
		}
	})

	t.Run("no auth only behind a loopback-only port", func(t *testing.T) {
		if env(cs, "CODEC_SERVER_INSECURE_NO_AUTH") == "true" {
			for _, port := range cs.Ports {
				if ip := net.ParseIP(port.HostIP); ip == nil || !ip.IsLoopback() {
					t.Errorf("--insecure-no-auth with port published on %q", port.HostIP)
				}
			}
		}
	})

	t.Run("Vault address and token match the dev server", func(t *testing.T) {
		u, err := url.Parse(env(cs, "VAULT_ADDR"))
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(env(vault, "VAULT_DEV_LISTEN_ADDRESS"))
		if u.Hostname() != "vault" || u.Port() != port {
			t.Errorf("VAULT_ADDR %s, want http://vault:%s", u, port)
		}
		if env(cs, "VAULT_TOKEN") == "" || env(cs, "VAULT_TOKEN") != env(vault, "VAULT_DEV_ROOT_TOKEN_ID") {
			t.Errorf("VAULT_TOKEN %q, want the dev root token %q", env(cs, "VAULT_TOKEN"), env(vault, "VAULT_DEV_ROOT_TOKEN_ID"))
		}
		if got := env(cs, "CODEC_SERVER_VAULT_KEY"); got != "temporal" {
			t.Errorf("CODEC_SERVER_VAULT_KEY=%q, want temporal (the key vault-init creates)", got)
		}
	})

	t.Run("token override reaches both Vault and the codec server", func(t *testing.T) {
		p := load(t, "VAULT_DEV_ROOT_TOKEN=other")
		for _, name := range []string{"codec-server", "vault-init"} {
			if got := env(service(t, p, name), "VAULT_TOKEN"); got != "other" {
				t.Errorf("%s VAULT_TOKEN=%q, want other", name, got)
			}
		}
		if got := env(service(t, p, "vault"), "VAULT_DEV_ROOT_TOKEN_ID"); got != "other" {
			t.Errorf("vault VAULT_DEV_ROOT_TOKEN_ID=%q, want other", got)
		}
	})

	t.Run("hardened like the Kubernetes pod", func(t *testing.T) {
		if !cs.ReadOnly {
			t.Error("read_only is not set")
		}
		if !slices.Equal(cs.CapDrop, []string{"ALL"}) || len(cs.CapAdd) > 0 {
			t.Errorf("cap_drop %q cap_add %q, want [ALL] and none", cs.CapDrop, cs.CapAdd)
		}
		if !slices.Contains(cs.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("security_opt %q lacks no-new-privileges:true", cs.SecurityOpt)
		}
		if uid, _, _ := strings.Cut(cs.User, ":"); uid == "" || uid == "0" || uid == "root" {
			t.Errorf("user %q, want a non-root uid", cs.User)
		}
	})

	t.Run("built from the repository root with deploy/Dockerfile", func(t *testing.T) {
		if cs.Build == nil {
			t.Fatal("no build section")
		}
		for _, f := range []string{"go.mod", cs.Build.Dockerfile} {
			path := f
			if !filepath.IsAbs(path) {
				path = filepath.Join(cs.Build.Context, f)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("build context %s: %v", cs.Build.Context, err)
			}
		}
	})
}

func TestVaultInit(t *testing.T) {
	t.Parallel()
	p := load(t)
	vi := service(t, p, "vault-init")
	if vi.Restart != types.RestartPolicyNo {
		t.Errorf("vault-init restart %q, want no (one-shot)", vi.Restart)
	}
	if len(vi.Volumes) != 1 || !vi.Volumes[0].ReadOnly {
		t.Fatalf("vault-init volumes %+v, want the init script read-only", vi.Volumes)
	}
	src, target := vi.Volumes[0].Source, vi.Volumes[0].Target
	if _, err := os.Stat(src); err != nil {
		t.Errorf("init script: %v", err)
	}
	if !slices.Contains(vi.Entrypoint, target) {
		t.Errorf("entrypoint %q does not run %s", vi.Entrypoint, target)
	}
	if vi.Image != service(t, p, "vault").Image {
		t.Errorf("vault-init image %q differs from vault's", vi.Image)
	}
}
