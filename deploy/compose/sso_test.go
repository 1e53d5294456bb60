package compose_test

import (
	"context"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/envelopecodec/envelope/deploy/internal/serverflags"
)

var ssoEnv = []string{
	"OIDC_ISSUER=https://login.example.com",
	"OIDC_CLIENT_ID=temporal-ui",
	"OIDC_CLIENT_SECRET=not-a-real-secret",
}

// loadSSO reads compose.yaml with the compose.sso.yaml override, as
// `docker compose -f compose.yaml -f compose.sso.yaml` does.
func loadSSO(t *testing.T, env ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml", "compose.sso.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnv(env),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// TestSingleSignOnOverride checks compose.sso.yaml against what
// e2e/sso_test.go proves with the real UI server: UI sign-in with the same
// issuer the codec server trusts, an https codec endpoint with "pass access
// token" on, and the codec server's CORS origin equal to the UI origin the
// callback URL names.
func TestSingleSignOnOverride(t *testing.T) {
	t.Parallel()
	p, err := loadSSO(t, ssoEnv...)
	if err != nil {
		t.Fatalf("load compose.yaml + compose.sso.yaml: %v", err)
	}
	ui := service(t, p, "temporal-ui")
	cs := service(t, p, "codec-server")

	for k, want := range map[string]string{
		"TEMPORAL_AUTH_ENABLED":            "true",
		"TEMPORAL_AUTH_PROVIDER_URL":       "https://login.example.com",
		"TEMPORAL_AUTH_CLIENT_ID":          "temporal-ui",
		"TEMPORAL_AUTH_CLIENT_SECRET":      "not-a-real-secret",
		"TEMPORAL_CODEC_PASS_ACCESS_TOKEN": "true",
	} {
		if got := env(ui, k); got != want {
			t.Errorf("temporal-ui %s=%q, want %q", k, got, want)
		}
	}
	if !slices.Contains(strings.Split(env(ui, "TEMPORAL_AUTH_SCOPES"), ","), "openid") {
		t.Errorf("TEMPORAL_AUTH_SCOPES=%q lacks openid", env(ui, "TEMPORAL_AUTH_SCOPES"))
	}

	callback, err := url.Parse(env(ui, "TEMPORAL_AUTH_CALLBACK_URL"))
	if err != nil || callback.Path != "/auth/sso/callback" {
		t.Fatalf("TEMPORAL_AUTH_CALLBACK_URL=%q: want <UI origin>/auth/sso/callback", env(ui, "TEMPORAL_AUTH_CALLBACK_URL"))
	}
	uiOrigin := callback.Scheme + "://" + callback.Host
	if callback.Port() != ui.Ports[0].Published {
		t.Errorf("callback port %s, the UI is published on %s", callback.Port(), ui.Ports[0].Published)
	}
	if got := env(ui, "TEMPORAL_CORS_ORIGINS"); got != uiOrigin {
		t.Errorf("TEMPORAL_CORS_ORIGINS=%q, want the callback's origin %s", got, uiOrigin)
	}

	endpoint, err := url.Parse(env(ui, "TEMPORAL_CODEC_ENDPOINT"))
	if err != nil || endpoint.Scheme != "https" {
		t.Fatalf("TEMPORAL_CODEC_ENDPOINT=%q: the UI passes the token only to https", env(ui, "TEMPORAL_CODEC_ENDPOINT"))
	}
	if endpoint.Port() != cs.Ports[0].Published {
		t.Errorf("TEMPORAL_CODEC_ENDPOINT port %s, codec-server published on %s", endpoint.Port(), cs.Ports[0].Published)
	}

	for k := range cs.Environment {
		if _, ok := serverflags.FlagForEnv(k); !ok {
			t.Errorf("codec-server %s is not the twin of any codec-server flag", k)
		}
	}
	for k, want := range map[string]string{
		"CODEC_SERVER_INSECURE_NO_AUTH": "false",
		"CODEC_SERVER_OIDC_ISSUER":      env(ui, "TEMPORAL_AUTH_PROVIDER_URL"),
		"CODEC_SERVER_JWT_AUDIENCE":     "temporal-ui",
		"CODEC_SERVER_CORS_ORIGIN":      uiOrigin,
	} {
		if got := env(cs, k); got != want {
			t.Errorf("codec-server %s=%q, want %q", k, got, want)
		}
	}

	// TLS files come from the mounted certs folder, and the health check
	// speaks https with that CA.
	var mount string
	for _, v := range cs.Volumes {
		if path.Base(v.Source) == "certs" {
			mount = v.Target
			if !v.ReadOnly {
				t.Errorf("volume %s is writable, want read-only", v.Source)
			}
		}
	}
	if mount == "" {
		t.Fatalf("no certs volume in %+v", cs.Volumes)
	}
	for _, k := range []string{"CODEC_SERVER_TLS_CERT", "CODEC_SERVER_TLS_KEY"} {
		if !strings.HasPrefix(env(cs, k), mount+"/") {
			t.Errorf("%s=%q is not under the certs mount %s", k, env(cs, k), mount)
		}
	}
	hc := strings.Join(cs.HealthCheck.Test, " ")
	if !strings.Contains(hc, "https://127.0.0.1:8081/healthz") || !strings.Contains(hc, "--cacert "+mount+"/") {
		t.Errorf("health check %q: want https with --cacert from %s", hc, mount)
	}

	t.Run("audience override", func(t *testing.T) {
		p, err := loadSSO(t, append(slices.Clone(ssoEnv), "OIDC_AUDIENCE=temporal-codec")...)
		if err != nil {
			t.Fatal(err)
		}
		if got := env(service(t, p, "codec-server"), "CODEC_SERVER_JWT_AUDIENCE"); got != "temporal-codec" {
			t.Errorf("CODEC_SERVER_JWT_AUDIENCE=%q, want temporal-codec", got)
		}
	})

	t.Run("refuses to start without the provider's settings", func(t *testing.T) {
		if _, err := loadSSO(t); err == nil || !strings.Contains(err.Error(), "OIDC_") {
			t.Errorf("loaded without OIDC_* set (err %v), want an error naming the variable", err)
		}
	})
}
