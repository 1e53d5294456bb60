package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/keyring"
)

// TestAuditLinesSurviveClose: with a long flush interval the audit lines
// sit in memory; Close writes them all to the file.
func TestAuditLinesSurviveClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "k.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(dir, "audit.jsonl")
	m := runMain(t, "--listen", "127.0.0.1:0", "--keys-file", keys, "--audit-log", audit, "--audit-flush-interval", "1h")
	rc := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: m.URL()})
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}}
	const n = 20
	for range n {
		if _, err := rc.Encode(in); err != nil {
			t.Fatal(err)
		}
	}
	// Buffered: no write system call per request.
	if b, _ := os.ReadFile(audit); len(b) != 0 {
		t.Errorf("%d bytes of audit log written before the flush interval or Close; want them buffered", len(b))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(b, []byte(`"msg":"audit"`)); got != n {
		t.Errorf("%d audit lines after Close, want %d:\n%s", got, n, b)
	}
}
