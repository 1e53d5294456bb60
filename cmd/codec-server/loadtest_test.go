//go:build loadtest

// Load tests: measurements, not checks; run by `make bench` with -tags loadtest.

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/internal/loadgen"
	"github.com/envelopecodec/envelope/keyring"
)

// TestLoadBinary runs the real binary with JWT, CORS, metrics and audit on,
// sends decode requests of 100 × 1 KiB payloads from 32 clients for 10 s,
// and prints req/s, p50, p99 and the server process's peak resident memory
// (VmHWM). Run it with
//
//	go test -tags loadtest -run TestLoadBinary -v ./cmd/codec-server/
func TestLoadBinary(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	iss := jwttest.New(t, jwttest.Options{})
	p := start(t, dir, nil, "--listen", "127.0.0.1:0", "--keys-file", keys,
		"--jwks-file", iss.WriteJWKSFile(t, ""), "--jwt-issuer", iss.IssuerURL(), "--jwt-audience", iss.Audience(),
		"--cors-origin", "http://localhost:8233", "--audit-log", filepath.Join(dir, "audit.log"))
	url := p.ready(t)

	kr, _ := keyring.OpenFile(keys, keyring.FileOptions{})
	c, _ := codec.New(kr, codec.Options{})
	in := make([]*commonpb.Payload, 100)
	for i := range in {
		in[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: bytes.Repeat([]byte{'x'}, 1024)}
	}
	sealed, _ := c.Encode(in)
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	headers := map[string]string{
		"Content-Type": "application/json", "X-Namespace": "default", "Origin": "http://localhost:8233",
		"Authorization": iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}}),
	}
	const clients, d = 32, 10 * time.Second
	all, err := loadgen.Run(url+"/decode", body, headers, clients, d)
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	hwm := ""
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			hwm = strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	t.Logf("real binary, decode 100 x 1 KiB, %d clients, %s: %.0f req/s, p50 %s, p99 %s, server peak RSS (VmHWM) %s",
		clients, d, float64(len(all))/d.Seconds(), loadgen.Percentile(all, 50).Round(100*time.Microsecond), loadgen.Percentile(all, 99).Round(100*time.Microsecond), hwm)
}
