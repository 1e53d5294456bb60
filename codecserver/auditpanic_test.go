package codecserver_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codecserver"
)

// TestPanickingRequestIsAudited: a request whose codec panics is answered
// 500 and still leaves its audit line (status 500, outcome internal), with
// the JSON writer and with a slog audit logger. The audit line used to be
// skipped, as the panic unwound past it to the outer recoverer.
func TestPanickingRequestIsAudited(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"AuditWriter", "AuditLog"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			_, url := newMemServer(t, func(c *codecserver.Config) {
				c.Codecs = []converter.PayloadCodec{c.Codec, panicAfterCodec{}}
				c.Codec = nil
				if name == "AuditWriter" {
					c.AuditWriter = &buf
				} else {
					c.AuditLog = slog.New(slog.NewJSONHandler(&buf, nil))
				}
			})
			status, _ := rawDo(t, url+"/decode", body(t, []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}}), [][2]string{{"Content-Type", "application/json"}})
			if status != 500 {
				t.Fatalf("status %d, want 500", status)
			}
			var found bool
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "audit" {
					if m["status"] != 500.0 || m["outcome"] != "internal" || m["route"] != "decode" {
						t.Errorf("audit line %s, want status 500, outcome internal, route decode", line)
					}
					found = true
				}
			}
			if !found {
				t.Fatalf("no audit line for the panicking request; audit output:\n%s", buf.String())
			}
		})
	}
}
