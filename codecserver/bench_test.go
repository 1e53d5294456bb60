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
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/internal/loadgen"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// benchClients is the number of concurrent clients in the latency
// benchmarks: GOMAXPROCS × parallelism.
const benchClients = 32

type benchSetup struct {
	codec  *codec.Codec
	iss    *jwttest.Issuer
	server http.Handler // ours: JWT, CORS, metrics, audit on
	noAuth http.Handler // ours without auth: CORS, metrics, audit on
	sdk    http.Handler // the SDK's reference handler, same codec
}

func newBenchSetup(b testing.TB) *benchSetup {
	b.Helper()
	kr := keyringtest.New()
	m := codecserver.NewMetrics()
	c, err := codec.New(codecserver.InstrumentKeyring(kr, m), codec.Options{})
	if err != nil {
		b.Fatal(err)
	}
	iss := jwttest.New(b, jwttest.Options{})
	discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
	// The audit log goes to a file through the same buffered writer as
	// the binary's, so that its cost is counted as in production.
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
	open, err := codecserver.New(codecserver.Config{
		Codec: c, Unauthenticated: true, CORSOrigins: []string{uiOrigin},
		Logger: discard, AuditWriter: aw, Metrics: codecserver.NewMetrics(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchSetup{codec: c, iss: iss, server: srv, noAuth: open, sdk: converter.NewPayloadCodecHTTPHandler(c)}
}

// latencies runs b.N POSTs of body to url from benchClients goroutines and
// reports requests/s, p50, p99 and the peak heap in use.
func latencies(b *testing.B, url string, body []byte, headers map[string]string) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients * 2}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var all []time.Duration
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism(benchClients / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			lat, err := loadgen.Post(client, url, body, headers)
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, lat)
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	sampler.Wait()
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(loadgen.Percentile(all, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(loadgen.Percentile(all, 99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

// BenchmarkDecode100x1KiB compares a /decode of 100 × 1 KiB payloads
// through this server (JWT, CORS, metrics and audit on) with the SDK's
// NewPayloadCodecHTTPHandler serving the same codec, at 32 concurrent
// clients over loopback HTTP. Compare req/s; the target is ≥ 0.8×.
func BenchmarkDecode100x1KiB(b *testing.B) {
	s := newBenchSetup(b)
	sealed, err := s.codec.Encode(plainPayloads(100, 1024))
	if err != nil {
		b.Fatal(err)
	}
	reqBody := body(b, sealed)
	b.Run("server=envelope", func(b *testing.B) {
		hs := httptest.NewServer(s.server)
		defer hs.Close()
		latencies(b, hs.URL+"/decode", reqBody, map[string]string{
			"Content-Type": "application/json", "X-Namespace": "default", "Origin": uiOrigin,
			"Authorization": s.iss.Bearer(b, jwttest.Claims{Permissions: []string{"default:read"}}),
		})
	})
	b.Run("server=sdk-reference", func(b *testing.B) {
		hs := httptest.NewServer(s.sdk)
		defer hs.Close()
		latencies(b, hs.URL+"/decode", reqBody, map[string]string{"Content-Type": "application/json"})
	})
}

// BenchmarkDecodeHistory2000x1KiB decodes 2,000 × 1 KiB payloads sealed
// under 4 data keys with a cold decode cache (a new codec per iteration):
// in one /decode request, and one request per payload.
func BenchmarkDecodeHistory2000x1KiB(b *testing.B) {
	kr := keyringtest.New()
	sealer, _ := codec.New(kr, codec.Options{DataKeyMaxUses: 500})
	sealed, err := sealer.Encode(plainPayloads(2000, 1024))
	if err != nil {
		b.Fatal(err)
	}
	discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
	newServer := func(b *testing.B) *httptest.Server {
		c, _ := codec.New(kr, codec.Options{})
		srv, err := codecserver.New(codecserver.Config{Codec: c, Unauthenticated: true, Logger: discard, AuditLog: discard, Metrics: codecserver.NewMetrics()})
		if err != nil {
			b.Fatal(err)
		}
		return httptest.NewServer(srv)
	}
	post := func(b *testing.B, client *http.Client, url string, body []byte) {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	whole := body(b, sealed)
	single := make([][]byte, len(sealed))
	for i := range sealed {
		single[i] = body(b, sealed[i:i+1])
	}
	b.Run("requests=1", func(b *testing.B) {
		b.SetBytes(2000 * 1024)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			hs := newServer(b)
			b.StartTimer()
			post(b, hs.Client(), hs.URL+"/decode", whole)
			b.StopTimer()
			hs.Close()
			b.StartTimer()
		}
	})
	b.Run("requests=2000", func(b *testing.B) {
		b.SetBytes(2000 * 1024)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			hs := newServer(b)
			b.StartTimer()
			for _, one := range single {
				post(b, hs.Client(), hs.URL+"/decode", one)
			}
			b.StopTimer()
			hs.Close()
			b.StartTimer()
		}
	})
}

// BenchmarkDecodeOnePayload is the request the temporal CLI sends for
// every payload of a history (one /decode of one payload), through this
// server with JWT (RS256, the same token every time), CORS, metrics and
// the audit log on, without auth, and through the SDK's reference handler,
// at 32 concurrent clients. Compare req/s (and ns/op).
func BenchmarkDecodeOnePayload(b *testing.B) {
	s := newBenchSetup(b)
	sealed, err := s.codec.Encode(plainPayloads(1, 256))
	if err != nil {
		b.Fatal(err)
	}
	reqBody := body(b, sealed)
	b.Run("server=envelope-jwt", func(b *testing.B) {
		hs := httptest.NewServer(s.server)
		defer hs.Close()
		latencies(b, hs.URL+"/decode", reqBody, map[string]string{
			"Content-Type": "application/json", "X-Namespace": "default", "Origin": uiOrigin,
			"Authorization": s.iss.Bearer(b, jwttest.Claims{Permissions: []string{"default:read"}}),
		})
	})
	b.Run("server=envelope-noauth", func(b *testing.B) {
		hs := httptest.NewServer(s.noAuth)
		defer hs.Close()
		latencies(b, hs.URL+"/decode", reqBody, map[string]string{"Content-Type": "application/json", "X-Namespace": "default", "Origin": uiOrigin})
	})
	b.Run("server=sdk-reference", func(b *testing.B) {
		hs := httptest.NewServer(s.sdk)
		defer hs.Close()
		latencies(b, hs.URL+"/decode", reqBody, map[string]string{"Content-Type": "application/json"})
	})
}
