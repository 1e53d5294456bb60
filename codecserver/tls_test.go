package codecserver_test

import (
	"bytes"
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

func TestMTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t)
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
	kr := keyringtest.New()
	c, _ := codec.New(kr, codec.Options{})
	perms, err := codecserver.ParseClientCertPermissions([]string{"ui-proxy=default:read", "ui-proxy=staging:read", "nobody=other:read"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := codecserver.New(codecserver.Config{Codec: c, ClientCertPermissions: perms, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// httptest's StartTLS would put its own certificate first; serve ours.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hsrv := &http.Server{Handler: srv, TLSConfig: tcfg, ErrorLog: slog.NewLogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)).Handler(), slog.LevelError)}
	go hsrv.Serve(tls.NewListener(ln, tcfg))
	t.Cleanup(func() { hsrv.Close() })
	hs := struct{ URL string }{"https://" + ln.Addr().String()}
	sealed, _ := c.Encode(plainPayloads(1, 10))

	client := func(cn string) *http.Client {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(ca.pem)
		tc := &tls.Config{RootCAs: roots}
		if cn != "" {
			cp, kp := ca.issue(t, cn, time.Hour, false)
			pair, err := tls.X509KeyPair(cp, kp)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	post := func(cl *http.Client, ns string) (int, error) {
		req, _ := http.NewRequest("POST", hs.URL+"/decode", bytes.NewReader(body(t, sealed)))
		req.Header.Set("X-Namespace", ns)
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
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
			got, err := post(client(tt.cn), tt.ns)
			if err != nil || got != tt.want {
				t.Errorf("status %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	t.Run("no client certificate fails the handshake", func(t *testing.T) {
		if _, err := post(client(""), "default"); err == nil {
			t.Error("request without a client certificate succeeded")
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		cl := client("ui-proxy")
		cl.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
		if _, err := post(cl, "default"); err == nil {
			t.Error("TLS 1.1 accepted")
		}
	})
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
