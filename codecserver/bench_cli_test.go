package codecserver_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// cliSetup is the one-payload request of the temporal CLI (one POST
// /decode per payload, X-Namespace empty, the same bearer token every
// time) against this server configured as the binary is (JWT, the audit
// log through an AuditWriter to a file, metrics with the decode observer
// and the instrumented keyring, CORS on) and against the SDK's reference
// handler around the same codec without auth.
type cliSetup struct {
	envelope, sdk http.Handler
	body          []byte
	headers       http.Header // envelope's; the SDK gets Content-Type only
}

func newCLISetup(b *testing.B) *cliSetup {
	b.Helper()
	m := codecserver.NewMetrics()
	c, err := codec.New(codecserver.InstrumentKeyring(keyringtest.New(), m), codec.Options{DecodeObserver: m.ObserveDecode})
	if err != nil {
		b.Fatal(err)
	}
	iss := jwttest.New(b, jwttest.Options{})
	discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
	f, err := os.Create(filepath.Join(b.TempDir(), "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	aw := codecserver.NewAuditWriter(f, codecserver.DefaultAuditFlushInterval)
	b.Cleanup(func() { aw.Close(); f.Close() })
	v, err := codecserver.NewJWTVerifier(context.Background(), codecserver.JWTConfig{
		JWKSFile: iss.WriteJWKSFile(b, ""), Issuer: iss.IssuerURL(), Audience: iss.Audience(), Logger: discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := codecserver.New(codecserver.Config{
		Codec: c, JWT: v, CORSOrigins: []string{uiOrigin},
		Logger: discard, AuditWriter: aw, Metrics: m,
	})
	if err != nil {
		b.Fatal(err)
	}
	sealed, err := c.Encode(plainPayloads(1, 40))
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", iss.Bearer(b, jwttest.Claims{Permissions: []string{"default:read"}}))
	h["X-Namespace"] = []string{""}
	return &cliSetup{envelope: srv, sdk: converter.NewPayloadCodecHTTPHandler(c), body: body(b, sealed), headers: h}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// cliSide is one server of the comparison and the headers it is sent.
type cliSide struct {
	h   http.Handler
	hdr http.Header
}

func (s *cliSetup) sides() [2]cliSide {
	return [2]cliSide{
		{s.envelope, s.headers},
		{s.sdk, http.Header{"Content-Type": {"application/json"}}},
	}
}

// reportRatio reports each side's mean time per request and their ratio
// (envelope ÷ SDK: below 1 is faster than the reference).
func reportRatio(b *testing.B, n int, total [2]time.Duration) {
	if n == 0 {
		return
	}
	b.ReportMetric(float64(total[0].Nanoseconds())/float64(n), "envelope-ns/req")
	b.ReportMetric(float64(total[1].Nanoseconds())/float64(n), "sdk-ns/req")
	b.ReportMetric(float64(total[0])/float64(total[1]), "ratio")
}

// BenchmarkCLIDecodeHandler is the server side of the CLI's one-payload
// /decode without the network: ServeHTTP of this server (JWT, audit,
// metrics, CORS) and of the SDK's reference handler, alternating request
// by request, so that both see the same machine. It reports the time per
// request of each and the ratio envelope ÷ SDK; ns/op and allocs/op count
// both requests. Profile it with
//
//	go test -run '^$' -bench CLIDecodeHandler -benchtime 3s -cpuprofile cpu.out ./codecserver
func BenchmarkCLIDecodeHandler(b *testing.B) {
	s := newCLISetup(b)
	sides := s.sides()
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(s.body)
	var total [2]time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i, side := range sides {
			rd.Reset(s.body)
			r := httptest.NewRequest(http.MethodPost, "/decode", rd)
			r.Header = side.hdr.Clone()
			clear(w.h)
			w.status = 0
			t0 := time.Now()
			side.h.ServeHTTP(w, r)
			total[i] += time.Since(t0)
			if w.status != 0 && w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
		n++
	}
	reportRatio(b, n, total)
}

// BenchmarkCLIDecodeSequential is the CLI's one-payload /decode over
// loopback HTTP as the CLI sends them: one client on a keep-alive
// connection, one request at a time, alternating between this server
// (JWT, audit, metrics, CORS) and the SDK's reference handler. It reports
// the round trip of each and the ratio envelope ÷ SDK.
func BenchmarkCLIDecodeSequential(b *testing.B) {
	s := newCLISetup(b)
	sides := s.sides()
	var urls [2]string
	var clients [2]*http.Client
	for i, side := range sides {
		hs := httptest.NewServer(side.h)
		defer hs.Close()
		urls[i], clients[i] = hs.URL+"/decode", hs.Client()
	}
	var total [2]time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i, side := range sides {
			req, err := http.NewRequest(http.MethodPost, urls[i], bytes.NewReader(s.body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header = side.hdr.Clone()
			t0 := time.Now()
			resp, err := clients[i].Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			total[i] += time.Since(t0)
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		n++
	}
	reportRatio(b, n, total)
}
