package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// writePKI writes ca.pem, server.pem/.key (for 127.0.0.1) and
// client.pem/.key (CN "worker-a") into dir.
func writePKI(t *testing.T, dir string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name string, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	for i, leaf := range []struct {
		name, cn string
		usage    x509.ExtKeyUsage
	}{{"server", "codec-server", x509.ExtKeyUsageServerAuth}, {"client", "worker-a", x509.ExtKeyUsageClientAuth}} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: leaf.cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{leaf.usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		write(leaf.name+".pem", "CERTIFICATE", der)
		write(leaf.name+".key", "EC PRIVATE KEY", kder)
	}
}

func TestMTLSBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writePKI(t, dir)
	f := func(name string) string { return filepath.Join(dir, name) }
	p := start(t, dir, []string{"CODEC_SERVER_CLIENT_PERMISSION=worker-a=default:write,worker-a=payments:read"},
		"--listen", "127.0.0.1:0", "--keys-file", f("keys.json"),
		"--tls-cert", f("server.pem"), "--tls-key", f("server.key"), "--tls-client-ca", f("ca.pem"))
	// keys.json does not exist yet: the start must fail and say so.
	if code := p.wait(t); code == 0 || !strings.Contains(p.log(), "keys.json") {
		t.Fatalf("start with a missing key file: exit %d\n%s", code, p.log())
	}
	if _, stderr, code := runBinary(t, dir, nil, "keys", "new", "--file", f("keys.json")); code != 0 {
		t.Fatal(stderr)
	}
	p = start(t, dir, []string{"CODEC_SERVER_CLIENT_PERMISSION=worker-a=default:write,worker-a=payments:read"},
		"--listen", "127.0.0.1:0", "--keys-file", f("keys.json"),
		"--tls-cert", f("server.pem"), "--tls-key", f("server.key"), "--tls-client-ca", f("ca.pem"))
	var url string
	select {
	case url = <-p.url:
	case <-p.exited:
		t.Fatalf("exited: %s", p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("not listening: %s", p.log())
	}
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("url %s, want https", url)
	}
	if !strings.Contains(p.log(), "expires soon") {
		t.Errorf("no warning for a certificate valid 10 days:\n%s", p.log())
	}
	// Probes need no client certificate (Kubernetes httpGet probes and the
	// Docker HEALTHCHECK have none): poll /healthz, then /readyz, until the
	// server is ready.
	for _, path := range []string{"/healthz", "/readyz"} {
		args := []string{"healthcheck", "--url", url + path, "--cacert", f("ca.pem")}
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, stderr, code := runBinary(t, dir, nil, args...)
			if code == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("healthcheck of %s without a client certificate: %s\n%s", path, stderr, p.log())
			}
			time.Sleep(50 * time.Millisecond) // poll interval, bounded by the deadline
		}
	}
	if _, stderr, code := runBinary(t, dir, nil, "healthcheck", "--url", url+"/healthz", "--cacert", f("client.key")); code != 1 || !strings.Contains(stderr, "no PEM certificate") {
		t.Errorf("healthcheck with a --cacert holding no certificate: exit %d, %q", code, stderr)
	}
	// The health check can still present a certificate.
	if _, stderr, code := runBinary(t, dir, nil, "healthcheck", "--url", url+"/healthz", "--cacert", f("ca.pem"), "--cert", f("client.pem"), "--key", f("client.key")); code != 0 {
		t.Errorf("healthcheck with a client certificate: %s", stderr)
	}

	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(f("ca.pem"))
	roots.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(f("client.pem"), f("client.key"))
	if err != nil {
		t.Fatal(err)
	}
	client := http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}}
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: url, Client: client})
	sealed, err := remote.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Decode(sealed); err != nil {
		t.Fatal(err)
	}
	// Without a client certificate /encode and /decode are refused.
	noCert := http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	anon := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: url, Client: noCert})
	if _, err := anon.Decode(sealed); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("decode without a client certificate: %v, want 403 Forbidden", err)
	}
	if _, err := anon.Encode(in); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("encode without a client certificate: %v, want 403 Forbidden", err)
	}
	if !p.logContains("reason=client_certificate") {
		t.Errorf("no failure log line with reason client_certificate:\n%s", p.log())
	}
	// read on payments allows decode but not encode.
	payments := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: url + "/payments", Client: client})
	if _, err := payments.Encode(in); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("encode on payments with read only: %v", err)
	}
}
