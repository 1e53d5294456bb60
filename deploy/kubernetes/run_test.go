package kubernetes_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/deploy/internal/serverflags"
)

// TestManifestConfigStartsTheServer starts the real codec-server with the
// Deployment's arguments and environment (key-file variant): a key file
// and a certificate where the Secrets would be mounted, an OIDC issuer
// standing in for the ConfigMap's. The probes must then answer 200 the way
// the kubelet calls them, and /decode without a token 401.
func TestManifestConfigStartsTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts codec-server")
	}
	m := build(t, nil)
	c := container(t, m)
	env := environment(t, m, c)
	root := t.TempDir()
	bin := serverflags.BuildBinary(t)

	for _, vm := range c.VolumeMounts {
		if err := os.MkdirAll(filepath.Join(root, vm.MountPath), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var args []string
	for _, a := range c.Args {
		name, value, _ := strings.Cut(a, "=")
		if strings.HasPrefix(value, "/") {
			value = filepath.Join(root, value)
		}
		args = append(args, name+"="+value)
	}
	flags := flagValues(t, args)
	if out, err := exec.Command(bin, "keys", "new", "--file", flags["keys-file"]).CombinedOutput(); err != nil {
		t.Fatalf("keys new: %v\n%s", err, out)
	}
	writeCert(t, flags["tls-cert"], flags["tls-key"])

	oidc := fakeOIDC(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	cmdEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		switch k {
		case "CODEC_SERVER_LISTEN":
			v = fmt.Sprintf("0.0.0.0:%d", port)
		case "CODEC_SERVER_OIDC_ISSUER":
			v = oidc
		case "GOMEMLIMIT":
			v = fmt.Sprint(c.Resources.Limits.Memory().Value())
		}
		cmdEnv = append(cmdEnv, k+"="+v)
	}
	var logs strings.Builder
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr, cmd.Dir = cmdEnv, &logs, &logs, t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// The kubelet does not verify the certificate of an HTTPS probe.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(scheme, path string) (int, http.Header, error) {
		resp, err := client.Get(fmt.Sprintf("%s://127.0.0.1:%d%s", strings.ToLower(scheme), port, path))
		if err != nil {
			return 0, nil, err
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, err := get(string(c.StartupProbe.HTTPGet.Scheme), c.StartupProbe.HTTPGet.Path)
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("startup probe: %d %v\n%s", code, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for name, p := range map[string]*struct{ scheme, path string }{
		"liveness":  {string(c.LivenessProbe.HTTPGet.Scheme), c.LivenessProbe.HTTPGet.Path},
		"readiness": {string(c.ReadinessProbe.HTTPGet.Scheme), c.ReadinessProbe.HTTPGet.Path},
	} {
		if code, _, err := get(p.scheme, p.path); err != nil || code != http.StatusOK {
			t.Errorf("%s probe %s: %d %v\n%s", name, p.path, code, err, logs.String())
		}
	}
	resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/decode", port), "application/json", strings.NewReader(`{"payloads":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("/decode without a token: %s, WWW-Authenticate %q; want 401 with the header", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
}

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1, as
// cert-manager would write tls.crt and tls.key.
func writeCert(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "codec-server.temporal.svc"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeOIDC serves an OpenID Connect discovery document and a JWKS with one
// ES256 key, and returns the issuer URL.
func fakeOIDC(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "jwks_uri": issuer + "jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "test",
			"x": b64(pub[1:33]), "y": b64(pub[33:]),
		}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	issuer = srv.URL + "/"
	return issuer
}
