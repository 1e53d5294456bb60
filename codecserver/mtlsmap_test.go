package codecserver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// clientWith returns a client trusting ca that presents a client
// certificate signed by signer, shaped by tmpl.
func clientWith(t *testing.T, ca, signer *testCA, shape func(*x509.Certificate)) *http.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	shape(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, &key.PublicKey, signer.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	pair, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
}

func TestMTLSMappingBySANAndOneCN(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	kr := keyringtest.New()
	c, _ := codec.New(kr, codec.Options{})
	perms, err := codecserver.ParseClientCertPermissions([]string{
		"alice=default:read",
		"uri:spiffe://example.org/ui=default:read",
		"dns:worker.example.org=default:read",
		"email:ops@example.org=default:read",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := codecserver.New(codecserver.Config{Codec: c, ClientCertPermissions: perms, RequireClientCert: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	base := mtlsServer(t, ca, srv)
	sealed := body(t, func() []*commonpb.Payload { p, _ := c.Encode(plainPayloads(1, 8)); return p }())
	spiffe, _ := url.Parse("spiffe://example.org/ui")
	cnOID := asn1.ObjectIdentifier{2, 5, 4, 3}
	for _, tt := range []struct {
		name  string
		shape func(*x509.Certificate)
		want  int
	}{
		{"a mapped CN decodes", func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: "alice"} }, 200},
		{"a mapped URI SAN decodes", func(c *x509.Certificate) { c.URIs = []*url.URL{spiffe} }, 200},
		{"a mapped DNS SAN decodes", func(c *x509.Certificate) { c.DNSNames = []string{"worker.example.org"} }, 200},
		{"a mapped email SAN decodes", func(c *x509.Certificate) { c.EmailAddresses = []string{"ops@example.org"} }, 200},
		{"an unmapped certificate is 403", func(c *x509.Certificate) {
			c.Subject = pkix.Name{CommonName: "mallory"}
			c.DNSNames = []string{"other.example.org"}
		}, 403},
		// A CN is a CN: one that spells a SAN identity or "cn:alice" must
		// not get the permissions mapped to that SAN or to CN alice (a CA
		// that lets requesters choose the CN but checks SANs would
		// otherwise hand them out).
		{"a CN spelling a URI SAN identity is 403", func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: "uri:spiffe://example.org/ui"} }, 403},
		{"a CN spelling a DNS SAN identity is 403", func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: "dns:worker.example.org"} }, 403},
		{"a CN spelling an email SAN identity is 403", func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: "email:ops@example.org"} }, 403},
		{"a CN spelling cn:alice is 403", func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: "cn:alice"} }, 403},
		{"two subject CNs are 403 even when one is mapped", func(c *x509.Certificate) {
			c.Subject = pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: cnOID, Value: "mallory"}, {Type: cnOID, Value: "alice"}}}
		}, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tlsDo(t, clientWith(t, ca, ca, tt.shape), "POST", base+"/decode", sealed, nil)
			if err != nil || a.status != tt.want {
				t.Fatalf("status %d, %v (%s); want %d", a.status, err, a.body, tt.want)
			}
		})
	}
}

func TestMTLSWildcardMapping(t *testing.T) {
	t.Parallel()
	perms, err := codecserver.ParseClientCertPermissions([]string{"*=default:read"})
	if err != nil {
		t.Fatal(err)
	}
	ca := newCA(t)
	c, _ := codec.New(keyringtest.New(), codec.Options{})
	srv, _ := codecserver.New(codecserver.Config{Codec: c, ClientCertPermissions: perms, RequireClientCert: true, Logger: discardLogger()})
	base := mtlsServer(t, ca, srv)
	sealed := body(t, func() []*commonpb.Payload { p, _ := c.Encode(plainPayloads(1, 8)); return p }())
	a, err := tlsDo(t, mtlsClient(t, ca, ca, "anyone"), "POST", base+"/decode", sealed, nil)
	if err != nil || a.status != 200 {
		t.Fatalf("status %d, %v; want 200", a.status, err)
	}
	a, err = tlsDo(t, mtlsClient(t, ca, ca, "anyone"), "POST", base+"/encode", body(t, plainPayloads(1, 8)), nil)
	if err != nil || a.status != 403 {
		t.Fatalf("encode with *=default:read: %d, %v; want 403", a.status, err)
	}
}

// TestClientCAReloads: a new client CA in the file is used after Reload;
// certificates of the old CA then fail the handshake.
func TestClientCAReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	oldCA, newCAx := newCA(t), newCA(t)
	srvCert, srvKey := oldCA.issue(t, "codec-server", time.Hour, true)
	writeFiles(t, dir, map[string][]byte{"ca.pem": oldCA.pem, "srv.pem": srvCert, "srv.key": srvKey})
	cr, err := codecserver.NewCertReloader(filepath.Join(dir, "srv.pem"), filepath.Join(dir, "srv.key"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	car, err := codecserver.NewClientCAReloader(filepath.Join(dir, "ca.pem"), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	tcfg, err := codecserver.TLSConfigReloading(cr, car)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := codec.New(keyringtest.New(), codec.Options{})
	perms, _ := codecserver.ParseClientCertPermissions([]string{"alice=default:write"})
	srv, _ := codecserver.New(codecserver.Config{Codec: c, ClientCertPermissions: perms, RequireClientCert: true, Logger: discardLogger()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hsrv := &http.Server{Handler: srv, TLSConfig: tcfg, ErrorLog: slog.NewLogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)).Handler(), slog.LevelError)}
	go hsrv.Serve(tls.NewListener(ln, tcfg))
	t.Cleanup(func() { hsrv.Close() })
	base := "https://" + ln.Addr().String()
	post := func(signer *testCA) int {
		a, err := tlsDo(t, mtlsClient(t, oldCA, signer, "alice"), "POST", base+"/encode", body(t, plainPayloads(1, 8)), nil)
		if err != nil {
			return 0 // handshake refused
		}
		return a.status
	}
	if got := post(oldCA); got != 200 {
		t.Fatalf("old CA before reload: %d, want 200", got)
	}
	if got := post(newCAx); got == 200 {
		t.Fatalf("new CA before reload: %d, want a refusal", got)
	}
	writeFiles(t, dir, map[string][]byte{"ca.pem": newCAx.pem})
	if changed, err := car.Reload(); err != nil || !changed {
		t.Fatalf("Reload: %v, %v", changed, err)
	}
	if got := post(newCAx); got != 200 {
		t.Errorf("new CA after reload: %d, want 200", got)
	}
	if got := post(oldCA); got == 200 {
		t.Errorf("old CA after reload: %d, want a refusal", got)
	}
}
