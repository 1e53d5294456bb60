package codecserver_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codecserver"
)

// slowCodec notes when its Decode began and takes a while.
type slowCodec struct{ began chan time.Time }

func (c slowCodec) Encode(p []*commonpb.Payload) ([]*commonpb.Payload, error) { return p, nil }
func (c slowCodec) Decode(p []*commonpb.Payload) ([]*commonpb.Payload, error) {
	c.began <- time.Now()
	time.Sleep(50 * time.Millisecond) // the request's work, not synchronisation
	return p, nil
}

// TestAuditLinesStampTheRequestStart: both audit sinks (AuditLog, a slog
// logger, and AuditWriter, the hand encoder) stamp a line with the time
// the request started, as docs/SERVER.md says the lines are the same.
func TestAuditLinesStampTheRequestStart(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  func(w io.Writer) codecserver.Config
	}{
		{"AuditLog", func(w io.Writer) codecserver.Config {
			return codecserver.Config{AuditLog: slog.New(slog.NewJSONHandler(w, nil))}
		}},
		{"AuditWriter", func(w io.Writer) codecserver.Config { return codecserver.Config{AuditWriter: w} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var audit bytes.Buffer
			cfg := tt.cfg(&audit)
			c := slowCodec{began: make(chan time.Time, 1)}
			cfg.Codecs = []converter.PayloadCodec{c}
			cfg.Unauthenticated = true
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			srv, err := codecserver.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			body := `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"MQ=="}]}`
			req := httptest.NewRequest(http.MethodPost, "/decode", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			began := <-c.began
			var line struct{ Time time.Time }
			if err := json.Unmarshal(audit.Bytes(), &line); err != nil {
				t.Fatalf("audit line %q: %v", audit.Bytes(), err)
			}
			if line.Time.After(began) {
				t.Errorf("audit time %s is after the codec began (%s): stamped at write time, not at the request's start", line.Time.Format(time.RFC3339Nano), began.Format(time.RFC3339Nano))
			}
		})
	}
}
