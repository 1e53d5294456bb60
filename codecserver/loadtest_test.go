//go:build loadtest

// Load tests: measurements, not checks; run by `make bench` with -tags loadtest.

package codecserver_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/internal/loadgen"
)

// load runs loadgen.Run and fails the test on an error.
func load(t testing.TB, url string, body []byte, headers map[string]string, clients int, d time.Duration) []time.Duration {
	t.Helper()
	lat, err := loadgen.Run(url, body, headers, clients, d)
	if err != nil {
		t.Fatal(err)
	}
	return lat
}

// TestLoadCompareSDK is the issue 4 comparison with the two servers taking
// turns (1 s each, 10 rounds) so that load from other processes on the
// machine hits both alike. It prints req/s, p50 and p99 at 32 clients for
// decode requests of 100 × 1 KiB payloads. Run it with
//
//	go test -tags loadtest -run TestLoadCompareSDK -v ./codecserver/
func TestLoadCompareSDK(t *testing.T) {
	s := newBenchSetup(t)
	sealed, err := s.codec.Encode(plainPayloads(100, 1024))
	if err != nil {
		t.Fatal(err)
	}
	reqBody := body(t, sealed)
	ours := httptest.NewServer(s.server)
	defer ours.Close()
	sdk := httptest.NewServer(s.sdk)
	defer sdk.Close()
	oursHeaders := map[string]string{
		"Content-Type": "application/json", "X-Namespace": "default", "Origin": uiOrigin,
		"Authorization": s.iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}}),
	}
	sdkHeaders := map[string]string{"Content-Type": "application/json"}
	const clients, rounds, turn = 32, 10, time.Second
	var lo, ls []time.Duration
	load(t, ours.URL+"/decode", reqBody, oursHeaders, clients, turn/4) // warm up
	load(t, sdk.URL+"/decode", reqBody, sdkHeaders, clients, turn/4)
	for r := 0; r < rounds; r++ {
		lo = append(lo, load(t, ours.URL+"/decode", reqBody, oursHeaders, clients, turn)...)
		ls = append(ls, load(t, sdk.URL+"/decode", reqBody, sdkHeaders, clients, turn)...)
	}
	stats := func(l []time.Duration) (rps float64, p50, p99 time.Duration) {
		slices.Sort(l)
		return float64(len(l)) / (rounds * turn).Seconds(), loadgen.Percentile(l, 50), loadgen.Percentile(l, 99)
	}
	ro, o50, o99 := stats(lo)
	rs, s50, s99 := stats(ls)
	t.Logf("decode 100 x 1 KiB, %d clients, %d interleaved rounds of %s:", clients, rounds, turn)
	t.Logf("%-40s %8s %10s %10s", "server", "req/s", "p50", "p99")
	t.Logf("%-40s %8.0f %10s %10s", "envelope (JWT, CORS, metrics, audit)", ro, o50.Round(time.Microsecond*100), o99.Round(time.Microsecond*100))
	t.Logf("%-40s %8.0f %10s %10s", "SDK NewPayloadCodecHTTPHandler", rs, s50.Round(time.Microsecond*100), s99.Round(time.Microsecond*100))
	t.Logf("throughput ratio envelope/SDK: %.2f (target >= 0.8)", ro/rs)
	fmt.Fprintf(os.Stdout, "RATIO %.2f\n", ro/rs)
}
