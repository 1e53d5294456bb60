package kubernetes_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func enableUI(s string) string {
	return strings.Replace(s, "# components:\n#   - components/vault\n#   - components/temporal-ui", "components:\n  - components/temporal-ui", 1)
}

// TestTemporalUIComponent builds the kustomization with
// components/temporal-ui and checks its settings against the codec
// server's, as e2e/sso_test.go runs them with the real UI server: UI sign-in
// with the issuer the codec server trusts, an https codec endpoint with
// "pass access token" on, and the UI's origin in the codec server's CORS
// origins.
func TestTemporalUIComponent(t *testing.T) {
	t.Parallel()
	m := build(t, enableUI)
	var ui, codec *appsv1.Deployment
	var svc *corev1.Service
	for _, o := range m.all {
		switch o := o.(type) {
		case *appsv1.Deployment:
			switch o.Name {
			case "temporal-ui":
				ui = o
			case "codec-server":
				codec = o
			}
		case *corev1.Service:
			if o.Name == "temporal-ui" {
				svc = o
			}
		}
	}
	if ui == nil || codec == nil || svc == nil {
		t.Fatalf("build lacks the temporal-ui Deployment (%v), its Service (%v) or the codec-server Deployment (%v)", ui != nil, svc != nil, codec != nil)
	}
	uiC := ui.Spec.Template.Spec.Containers[0]
	uiEnv := environment(t, m, uiC)
	csEnv := environment(t, m, codec.Spec.Template.Spec.Containers[0])

	if uiC.Image != "temporalio/ui:2.42.1" {
		t.Errorf("UI image %s, want temporalio/ui:2.42.1 (the version tested)", uiC.Image)
	}
	for k, want := range map[string]string{
		"TEMPORAL_AUTH_ENABLED":              "true",
		"TEMPORAL_CODEC_PASS_ACCESS_TOKEN":   "true",
		"TEMPORAL_CODEC_INCLUDE_CREDENTIALS": "false",
		"TEMPORAL_AUTH_PROVIDER_URL":         csEnv["CODEC_SERVER_OIDC_ISSUER"],
	} {
		if uiEnv[k] != want {
			t.Errorf("UI %s=%q, want %q", k, uiEnv[k], want)
		}
	}
	if uiEnv["TEMPORAL_AUTH_PROVIDER_URL"] == "" {
		t.Error("no issuer")
	}
	if !slices.Contains(strings.Split(uiEnv["TEMPORAL_AUTH_SCOPES"], ","), "openid") {
		t.Errorf("TEMPORAL_AUTH_SCOPES=%q lacks openid", uiEnv["TEMPORAL_AUTH_SCOPES"])
	}
	if e, err := url.Parse(uiEnv["TEMPORAL_CODEC_ENDPOINT"]); err != nil || e.Scheme != "https" {
		t.Errorf("TEMPORAL_CODEC_ENDPOINT=%q: the UI passes the token only to https", uiEnv["TEMPORAL_CODEC_ENDPOINT"])
	}
	cb, err := url.Parse(uiEnv["TEMPORAL_AUTH_CALLBACK_URL"])
	if err != nil || cb.Scheme != "https" || cb.Path != "/auth/sso/callback" {
		t.Fatalf("TEMPORAL_AUTH_CALLBACK_URL=%q: want https://<UI host>/auth/sso/callback", uiEnv["TEMPORAL_AUTH_CALLBACK_URL"])
	}
	origin := cb.Scheme + "://" + cb.Host
	if !slices.Contains(strings.Split(csEnv["CODEC_SERVER_CORS_ORIGIN"], ","), origin) {
		t.Errorf("CODEC_SERVER_CORS_ORIGIN=%q lacks the UI's origin %s", csEnv["CODEC_SERVER_CORS_ORIGIN"], origin)
	}
	if uiEnv["TEMPORAL_CORS_ORIGINS"] != origin {
		t.Errorf("TEMPORAL_CORS_ORIGINS=%q, want %s", uiEnv["TEMPORAL_CORS_ORIGINS"], origin)
	}

	// The client secret comes from a Secret, never from the ConfigMap.
	if _, ok := uiEnv["TEMPORAL_AUTH_CLIENT_SECRET"]; ok {
		for _, cm := range m.configMaps {
			if _, ok := cm.Data["TEMPORAL_AUTH_CLIENT_SECRET"]; ok {
				t.Errorf("ConfigMap %s holds the client secret", cm.Name)
			}
		}
	}
	var fromSecret bool
	for _, e := range uiC.Env {
		if e.Name == "TEMPORAL_AUTH_CLIENT_SECRET" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			fromSecret = true
		}
	}
	if !fromSecret {
		t.Error("TEMPORAL_AUTH_CLIENT_SECRET is not read from a Secret")
	}

	pod := ui.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("UI pod may run as root")
	}
	if sc := uiC.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("UI container security context %+v: want no privilege escalation and all capabilities dropped", uiC.SecurityContext)
	}
	if uiC.ReadinessProbe == nil || uiC.ReadinessProbe.HTTPGet == nil || uiC.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("UI readiness probe %+v, want GET /healthz", uiC.ReadinessProbe)
	}
	if uiEnv["TEMPORAL_UI_PORT"] != "8080" || len(uiC.Ports) != 1 || uiC.Ports[0].ContainerPort != 8080 {
		t.Errorf("UI port: TEMPORAL_UI_PORT=%q, container ports %+v, want 8080", uiEnv["TEMPORAL_UI_PORT"], uiC.Ports)
	}
	for k, v := range svc.Spec.Selector {
		if ui.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the UI pods", k, v)
		}
	}
}
