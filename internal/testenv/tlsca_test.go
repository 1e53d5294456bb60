package testenv_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/envelopecodec/envelope/internal/testenv"
)

// TestTestCA serves HTTPS with an issued certificate and checks that the
// CA's client trusts it, that a client without the CA does not, and that
// SPKIHash is the certificate's public key hash Chromium expects.
func TestTestCA(t *testing.T) {
	t.Parallel()
	ca := testenv.NewTestCA(t)
	sc := ca.Issue(t)
	pair, err := tls.LoadX509KeyPair(sc.CertFile, sc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()

	resp, err := ca.Client().Get(srv.URL) // https://127.0.0.1:port
	if err != nil {
		t.Fatalf("the CA's client does not trust the certificate: %v", err)
	}
	resp.Body.Close()
	if _, err := http.Get(srv.URL); err == nil {
		t.Error("a client without the test CA trusted the certificate")
	}

	b, err := os.ReadFile(sc.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if want := base64.StdEncoding.EncodeToString(sum[:]); sc.SPKIHash != want {
		t.Errorf("SPKIHash %s, want %s", sc.SPKIHash, want)
	}
}
