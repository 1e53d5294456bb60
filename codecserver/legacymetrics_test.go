package codecserver_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestLegacyPayloadsDecodeWithMetrics decodes a payload of the samples'
// static-key codec through a server whose keyring is instrumented, as
// cmd/codec-server wires it with metrics on (the default).
func TestLegacyPayloadsDecodeWithMetrics(t *testing.T) {
	t.Parallel()
	path, sealed, orig := keyringtest.LegacyKeyFile(t)
	file, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := codecserver.NewMetrics()
	kr := codecserver.InstrumentKeyring(file, m)
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := codecserver.New(codecserver.Config{Codec: c, Keyring: kr, Unauthenticated: true, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	url := httptestServer(t, srv)
	resp, err := http.Post(url+"/decode", "application/json", bytes.NewReader(body(t, []*commonpb.Payload{sealed})))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("decode of a static-key sample payload with metrics on: %d %s", resp.StatusCode, b)
	}
	got := answer{status: 200, body: b}.payloads(t)
	if len(got) != 1 || !proto.Equal(got[0], orig) {
		t.Fatalf("decoded %v, want %v", got, orig)
	}
	rec := newRecorder()
	srv.ServeHTTP(rec, mustReq("GET", "/metrics"))
	if want := `codec_server_keyring_calls_total{op="legacy_key",outcome="ok"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("metrics lack %s", want)
	}
}

type plainKR struct{ keyring.Keyring }

type checkKR struct{ keyring.Keyring }

func (checkKR) Check(context.Context) error { return nil }

type legacyKR struct{ keyring.Keyring }

func (legacyKR) LegacyKey(context.Context, string) (keyring.Secret, error) {
	return keyring.Secret{}, keyring.ErrUnknownKey
}

type bothKR struct{ checkKR }

func (bothKR) LegacyKey(context.Context, string) (keyring.Secret, error) {
	return keyring.Secret{}, keyring.ErrUnknownKey
}

func TestInstrumentKeyringKeepsOptionalInterfaces(t *testing.T) {
	t.Parallel()
	m := codecserver.NewMetrics()
	for _, tt := range []struct {
		kr              keyring.Keyring
		checker, legacy bool
	}{
		{plainKR{}, false, false},
		{checkKR{}, true, false},
		{legacyKR{}, false, true},
		{bothKR{}, true, true},
	} {
		kr := codecserver.InstrumentKeyring(tt.kr, m)
		_, c := kr.(keyring.Checker)
		_, l := kr.(keyring.LegacyKeys)
		if c != tt.checker || l != tt.legacy {
			t.Errorf("InstrumentKeyring(%T): Checker %v, LegacyKeys %v; want %v, %v", tt.kr, c, l, tt.checker, tt.legacy)
		}
	}
}
