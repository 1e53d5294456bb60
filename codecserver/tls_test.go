package codecserver_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM cert and key for cn, valid for validFor.
func (ca *testCA) issue(t testing.TB, cn string, validFor time.Duration, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// mtlsServer serves h over TLS with the server certificate of ca, asking
// for (not requiring) client certificates signed by ca.
func mtlsServer(t *testing.T, ca *testCA, h http.Handler) string {
	t.Helper()
	dir := t.TempDir()
	srvCert, srvKey := ca.issue(t, "codec-server", 90*24*time.Hour, true)
	writeFiles(t, dir, map[string][]byte{"ca.pem": ca.pem, "srv.pem": srvCert, "srv.key": srvKey})
	cr, err := codecserver.NewCertReloader(filepath.Join(dir, "srv.pem"), filepath.Join(dir, "srv.key"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tcfg, err := codecserver.TLSConfig(cr, filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// httptest's StartTLS would put its own certificate first; serve ours.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hsrv := &http.Server{Handler: h, TLSConfig: tcfg, ErrorLog: slog.NewLogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)).Handler(), slog.LevelError)}
	go hsrv.Serve(tls.NewListener(ln, tcfg))
	t.Cleanup(func() { hsrv.Close() })
	return "https://" + ln.Addr().String()
}

// mtlsClient trusts ca and presents a certificate for cn signed by
// signer (none when cn is "").
func mtlsClient(t *testing.T, ca, signer *testCA, cn string) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	tc := &tls.Config{RootCAs: roots}
	if cn != "" {
		cp, kp := signer.issue(t, cn, time.Hour, false)
		pair, err := tls.X509KeyPair(cp, kp)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
}

type tlsAnswer struct {
	status int
	header http.Header
	body   string
}

func tlsDo(t *testing.T, cl *http.Client, method, url string, b []byte, h map[string]string) (tlsAnswer, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if b != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return tlsAnswer{}, err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return tlsAnswer{status: resp.StatusCode, header: resp.Header, body: string(rb)}, nil
}

func TestMTLS(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	kr := keyringtest.New()
	c, _ := codec.New(kr, codec.Options{})
	perms, err := codecserver.ParseClientCertPermissions([]string{"ui-proxy=default:read", "ui-proxy=staging:read", "nobody=other:read"})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	srv, err := codecserver.New(codecserver.Config{
		Codec: c, Keyring: kr, ClientCertPermissions: perms, RequireClientCert: true,
		CORSOrigins: []string{uiOrigin}, Metrics: codecserver.NewMetrics(),
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	url := mtlsServer(t, ca, srv)
	sealed, _ := c.Encode(plainPayloads(1, 10))
	post := func(cl *http.Client, path, ns string) (tlsAnswer, error) {
		return tlsDo(t, cl, "POST", url+path, body(t, sealed), map[string]string{"X-Namespace": ns, "Origin": uiOrigin})
	}
	for _, tt := range []struct {
		name, cn, ns string
		want         int
	}{
		{"a mapped certificate decodes its namespace", "ui-proxy", "default", 200},
		{"a mapped certificate and another namespace is 403", "ui-proxy", "payments", 403},
		{"an unmapped certificate is 403", "stranger", "default", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := post(mtlsClient(t, ca, ca, tt.cn), "/decode", tt.ns)
			if err != nil || a.status != tt.want {
				t.Errorf("status %d, %v; want %d", a.status, err, tt.want)
			}
		})
	}
	t.Run("probes and metrics need no client certificate", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			a, err := tlsDo(t, mtlsClient(t, ca, ca, ""), "GET", url+path, nil, nil)
			if err != nil || a.status != 200 {
				t.Errorf("GET %s without a client certificate: %d, %v; want 200", path, a.status, err)
			}
		}
	})
	t.Run("encode and decode without a client certificate are 403", func(t *testing.T) {
		for _, path := range []string{"/decode", "/encode", "/default/decode"} {
			a, err := post(mtlsClient(t, ca, ca, ""), path, "default")
			if err != nil {
				t.Fatal(err)
			}
			if a.status != 403 || !strings.Contains(a.body, `"error":"a client certificate is required`) {
				t.Errorf("POST %s without a client certificate: %d %s; want 403 naming the certificate", path, a.status, a.body)
			}
			if a.header.Get("WWW-Authenticate") != "" {
				t.Errorf("403 with a WWW-Authenticate challenge %q: no HTTP credential can replace the certificate", a.header.Get("WWW-Authenticate"))
			}
			if a.header.Get("Access-Control-Allow-Origin") != uiOrigin || a.header.Get("Cache-Control") != "no-store" {
				t.Errorf("403 headers %v: want CORS for the allowed origin and Cache-Control: no-store", a.header)
			}
			id := a.header.Get("X-Request-Id")
			if id == "" || !strings.Contains(logs.String(), `"request_id":"`+id+`"`) || !strings.Contains(logs.String(), `"reason":"client_certificate"`) {
				t.Errorf("no failure log line with request ID %q and reason client_certificate:\n%s", id, logs.String())
			}
		}
	})
	t.Run("a certificate from another CA fails the handshake", func(t *testing.T) {
		if _, err := tlsDo(t, mtlsClient(t, ca, newCA(t), "ui-proxy"), "GET", url+"/healthz", nil, nil); err == nil {
			t.Error("a client certificate from an unknown CA was accepted")
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		cl := mtlsClient(t, ca, ca, "ui-proxy")
		cl.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
		if _, err := post(cl, "/decode", "default"); err == nil {
			t.Error("TLS 1.1 accepted")
		}
	})
}

// TestMTLSWithJWT: with a client CA and JWT, /encode and /decode need both
// a verified client certificate and a valid token.
func TestMTLSWithJWT(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	iss := jwttest.New(t, jwttest.Options{})
	v, err := codecserver.NewJWTVerifier(context.Background(), codecserver.JWTConfig{JWKSFile: iss.WriteJWKSFile(t, ""), Issuer: iss.IssuerURL(), Audience: iss.Audience()})
	if err != nil {
		t.Fatal(err)
	}
	c := mustCodec(t)
	srv, err := codecserver.New(codecserver.Config{Codec: c, JWT: v, RequireClientCert: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	url := mtlsServer(t, ca, srv)
	sealed, _ := c.Encode(plainPayloads(1, 10))
	token := iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}})
	for _, tt := range []struct {
		name      string
		cn, auth  string
		want      int
		challenge bool
	}{
		{"a certificate and a token decode", "worker", token, 200, false},
		{"a token without a certificate is 403", "", token, 403, false},
		{"a certificate without a token is 401", "worker", "", 401, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.auth != "" {
				h["Authorization"] = tt.auth
			}
			a, err := tlsDo(t, mtlsClient(t, ca, ca, tt.cn), "POST", url+"/decode", body(t, sealed), h)
			if err != nil || a.status != tt.want {
				t.Fatalf("status %d, %v (%s); want %d", a.status, err, a.body, tt.want)
			}
			if got := a.header.Get("WWW-Authenticate") != ""; got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want one: %v", a.header.Get("WWW-Authenticate"), tt.challenge)
			}
		})
	}
	if a, err := tlsDo(t, mtlsClient(t, ca, ca, ""), "GET", url+"/readyz", nil, nil); err != nil || a.status != 200 {
		t.Errorf("/readyz without a client certificate: %d, %v", a.status, err)
	}
}

func TestCertReloaderReloadsAndWarns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t)
	c1, k1 := ca.issue(t, "one", 10*24*time.Hour, true) // within 30 days: warn
	writeFiles(t, dir, map[string][]byte{"c.pem": c1, "k.pem": k1})
	var logs syncBuffer
	m := codecserver.NewMetrics()
	cr, err := codecserver.NewCertReloader(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), slog.New(slog.NewTextHandler(&logs, nil)), m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "expires soon") {
		t.Errorf("no expiry warning for a certificate valid 10 days: %s", logs.String())
	}
	rec := newRecorder()
	srv, _ := codecserver.New(codecserver.Config{Codec: mustCodec(t), Unauthenticated: true, Metrics: m})
	srv.ServeHTTP(rec, mustReq("GET", "/metrics"))
	if !strings.Contains(rec.Body.String(), "codec_server_tls_cert_expiry_timestamp_seconds") {
		t.Error("no certificate expiry metric")
	}
	c2, k2 := ca.issue(t, "two", 90*24*time.Hour, true)
	writeFiles(t, dir, map[string][]byte{"c.pem": c2, "k.pem": k2})
	if changed, err := cr.Reload(); err != nil || !changed {
		t.Fatalf("Reload = %v, %v", changed, err)
	}
	got, _ := cr.GetCertificate(nil)
	leaf, _ := x509.ParseCertificate(got.Certificate[0])
	if leaf.Subject.CommonName != "two" {
		t.Errorf("serving %q after reload, want two", leaf.Subject.CommonName)
	}
	writeFiles(t, dir, map[string][]byte{"c.pem": []byte("garbage")})
	if _, err := cr.Reload(); err == nil {
		t.Error("a broken certificate was accepted")
	}
	got, _ = cr.GetCertificate(nil)
	if leaf, _ := x509.ParseCertificate(got.Certificate[0]); leaf.Subject.CommonName != "two" {
		t.Error("a failed reload dropped the old certificate")
	}
}

func mustCodec(t testing.TB) *codec.Codec {
	c, err := codec.New(keyringtest.New(), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
