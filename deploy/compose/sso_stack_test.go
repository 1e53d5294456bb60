package compose_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/deploy/internal/serverflags"
)

// TestSingleSignOnCodecServerWithoutDocker runs the real codec-server with
// the codec-server environment of compose.yaml + compose.sso.yaml, minus
// Docker: an OpenID issuer (discovery and JWKS, on httptest) stands in for
// OIDC_ISSUER, the TLS files are made here, and a key file stands in for
// Vault (TestStackWithoutDocker covers Vault). It checks the HTTPS health
// check, the signed-in Web UI's preflight (Authorization and
// Authorization-Extras) from the UI origin, and that a token from that
// issuer for that audience decodes with <ns>:read and gets 403 without it.
func TestSingleSignOnCodecServerWithoutDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the codec server")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var issuer string
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/keys"})
		case "/keys":
			json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
				"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
				"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
			}}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer idp.Close()
	issuer = idp.URL

	p, err := loadSSO(t, "OIDC_ISSUER="+issuer, "OIDC_CLIENT_ID=temporal-ui", "OIDC_CLIENT_SECRET=x")
	if err != nil {
		t.Fatal(err)
	}
	cs := service(t, p, "codec-server")
	uiOrigin := env(cs, "CODEC_SERVER_CORS_ORIGIN")

	dir := t.TempDir()
	caPEM, certFile, keyFile := makeTLS(t, dir)
	keysFile := filepath.Join(dir, "keys.json")
	codecBin := serverflags.BuildBinary(t)
	if out, err := exec.Command(codecBin, "keys", "new", "--file", keysFile).CombinedOutput(); err != nil {
		t.Fatalf("keys new: %v\n%s", err, out)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	csEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CODEC_SERVER_KEYS_FILE=" + keysFile}
	for k, v := range cs.Environment {
		switch {
		case strings.HasPrefix(k, "VAULT_"), strings.HasPrefix(k, "CODEC_SERVER_VAULT_"):
			continue // a key file instead
		case k == "CODEC_SERVER_LISTEN":
			*v = "127.0.0.1:" + port
		case k == "CODEC_SERVER_TLS_CERT":
			*v = certFile
		case k == "CODEC_SERVER_TLS_KEY":
			*v = keyFile
		}
		csEnv = append(csEnv, k+"="+*v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var csLog bytes.Buffer
	server := exec.CommandContext(ctx, codecBin)
	server.Env, server.Stdout, server.Stderr, server.Dir = csEnv, &csLog, &csLog, dir
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = server.Wait() })

	// The service's health check, with this machine's paths and port.
	hc := slices.Clone(cs.HealthCheck.Test[2:])
	for i, a := range hc {
		hc[i] = strings.NewReplacer("127.0.0.1:8081", "127.0.0.1:"+port, "/certs/ca.crt", caPEM).Replace(a)
	}
	poll(t, "codec-server https health check", func() error {
		out, err := exec.Command(codecBin, hc...).CombinedOutput()
		if err != nil {
			return &execError{err, string(out)}
		}
		return nil
	}, &csLog)

	pool := x509.NewCertPool()
	b, _ := os.ReadFile(caPEM)
	pool.AppendCertsFromPEM(b)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://127.0.0.1:" + port

	t.Run("the signed-in Web UI's preflight is allowed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, url+"/decode", nil)
		req.Header.Set("Origin", uiOrigin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,authorization-extras,content-type,x-namespace")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != uiOrigin {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q (status %s)", uiOrigin, got, resp.Status)
		}
	})

	sign := func(perms []string) string {
		h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
		c, _ := json.Marshal(map[string]any{
			"iss": issuer, "aud": env(cs, "CODEC_SERVER_JWT_AUDIENCE"), "sub": "ada",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "permissions": perms,
		})
		in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	for _, tt := range []struct {
		name  string
		token string
		want  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"default:read", sign([]string{"default:read"}), http.StatusOK},
		{"another namespace only", sign([]string{"billing:read"}), http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url+"/decode", strings.NewReader(`{"payloads":[]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Namespace", "default")
			req.Header.Set("Origin", uiOrigin)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("POST /decode: %s, want %d\n%s", resp.Status, tt.want, csLog.String())
			}
		})
	}
}

type execError struct {
	err error
	out string
}

func (e *execError) Error() string { return e.err.Error() + ": " + e.out }

// makeTLS writes a CA certificate and a server certificate and key for
// 127.0.0.1 and localhost into dir.
func makeTLS(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	for f, blk := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(f, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}
