package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/keyring"
)

// TestOnePayloadRequestsShareOneConnection: the temporal CLI sends one
// POST /decode per payload of a history, one after the other. The binary,
// with JWT, audit log and metrics on, answers them on one keep-alive
// connection (a new connection per request would add a TCP handshake to
// every payload), and also after a refused request.
func TestOnePayloadRequestsShareOneConnection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	iss := jwttest.New(t, jwttest.Options{})
	p := start(t, dir, nil, "--listen", "127.0.0.1:0", "--keys-file", keys,
		"--jwks-file", iss.WriteJWKSFile(t, ""), "--jwt-issuer", iss.IssuerURL(), "--jwt-audience", iss.Audience(),
		"--audit-log", filepath.Join(dir, "audit.jsonl"))
	url := p.ready(t)

	kr, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	tok := iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	newConns := 0
	for i := range 20 {
		req, _ := http.NewRequest(http.MethodPost, url+"/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header["X-Namespace"] = []string{""} // as the CLI sends it
		auth := tok
		want := http.StatusOK
		if i == 10 {
			auth, want = iss.Bearer(t, jwttest.Claims{Permissions: []string{"billing:read"}}), http.StatusForbidden
		}
		req.Header.Set("Authorization", auth)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) {
				if !ci.Reused {
					newConns++
				}
			},
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
		if resp.Close {
			t.Errorf("request %d: the server closes the connection", i)
		}
	}
	if newConns != 1 {
		t.Errorf("20 sequential requests opened %d connections, want 1", newConns)
	}
}
