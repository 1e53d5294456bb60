package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestLegacyKeyDecodesWithMetricsOn: a key file with a "legacy": true key
// decodes payloads of the Temporal samples' static-key codec through the
// server as the binary wires it, metrics on (the default).
func TestLegacyKeyDecodesWithMetricsOn(t *testing.T) {
	t.Parallel()
	keys, sample, orig := keyringtest.LegacyKeyFile(t)
	m := runMain(t, "--listen", "127.0.0.1:0", "--keys-file", keys, "--audit=false")
	if !m.Config.Metrics {
		t.Fatal("metrics are off by default; this test is about metrics on")
	}

	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{sample}})
	if err != nil {
		t.Fatal(err)
	}
	status, out := post(t, m.URL()+"/decode", "", b)
	if status != 200 {
		t.Fatalf("decode of a static-key sample payload: %d %s", status, out)
	}
	var got commonpb.Payloads
	if err := protojson.Unmarshal(out, &got); err != nil || len(got.Payloads) != 1 || !proto.Equal(got.Payloads[0], orig) {
		t.Fatalf("decoded %s (%v), want %v", out, err, orig)
	}
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `codec_server_keyring_calls_total{op="legacy_key",outcome="ok"} 1`; !strings.Contains(string(mb), want) {
		t.Errorf("metrics lack %s", want)
	}
}
