//go:build loadtest

// Load tests: measurements, not checks; run by `make bench` with -tags loadtest.

package codecserver_test

import (
	"fmt"
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

// TestLoadCompareSDK is the issue 4 and 12 comparison with the servers
// taking turns (1 s each, 10 rounds) so that load from other processes on
// the machine hits all alike. It prints req/s, p50 and p99 at 32 clients
// for decode requests of 100 × 1 KiB payloads: this server with JWT
// (RS256, one token, as the UI and CLI send it), CORS, metrics and the
// audit log (to a file, buffered) on; the same without auth; and the SDK's
// NewPayloadCodecHTTPHandler around the same codec. Run it with
//
//	go test -tags loadtest -run TestLoadCompareSDK -v ./codecserver/
func TestLoadCompareSDK(t *testing.T) {
	s := newBenchSetup(t)
	sealed, err := s.codec.Encode(plainPayloads(100, 1024))
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "decode 100 x 1 KiB", s, body(t, sealed))
}

// TestLoadCompareSDKOnePayload is the same comparison for the request the
// temporal CLI sends per payload: one /decode of one payload.
func TestLoadCompareSDKOnePayload(t *testing.T) {
	s := newBenchSetup(t)
	sealed, err := s.codec.Encode(plainPayloads(1, 256))
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "decode 1 x 256 B", s, body(t, sealed))
}

func compare(t *testing.T, what string, s *benchSetup, reqBody []byte) {
	type side struct {
		name    string
		url     string
		headers map[string]string
		lat     []time.Duration
	}
	sides := []*side{
		{name: "envelope (JWT, CORS, metrics, audit)", url: httptestServer(t, s.server), headers: map[string]string{
			"Content-Type": "application/json", "X-Namespace": "default", "Origin": uiOrigin,
			"Authorization": s.iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}}),
		}},
		{name: "envelope (no auth; CORS, metrics, audit)", url: httptestServer(t, s.noAuth), headers: map[string]string{
			"Content-Type": "application/json", "X-Namespace": "default", "Origin": uiOrigin,
		}},
		{name: "SDK NewPayloadCodecHTTPHandler", url: httptestServer(t, s.sdk), headers: map[string]string{"Content-Type": "application/json"}},
	}
	const clients, rounds, turn = 32, 10, time.Second
	for _, sd := range sides { // warm up
		load(t, sd.url+"/decode", reqBody, sd.headers, clients, turn/4)
	}
	perRound := make([][]float64, len(sides))
	for r := 0; r < rounds; r++ {
		for k := range sides { // each round starts with another side
			i := (r + k) % len(sides)
			sd := sides[i]
			l := load(t, sd.url+"/decode", reqBody, sd.headers, clients, turn)
			sd.lat = append(sd.lat, l...)
			perRound[i] = append(perRound[i], float64(len(l))/turn.Seconds())
		}
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	t.Logf("%s, %d clients, %d interleaved rounds of %s:", what, clients, rounds, turn)
	t.Logf("%-42s %8s %8s %10s %10s", "server", "req/s", "median", "p50", "p99")
	for i, sd := range sides {
		slices.Sort(sd.lat)
		t.Logf("%-42s %8.0f %8.0f %10s %10s", sd.name, float64(len(sd.lat))/(rounds*turn).Seconds(), median(perRound[i]),
			loadgen.Percentile(sd.lat, 50).Round(time.Microsecond*100), loadgen.Percentile(sd.lat, 99).Round(time.Microsecond*100))
	}
	ratios := func(i int) []float64 {
		var r []float64
		for k := range perRound[i] {
			r = append(r, perRound[i][k]/perRound[2][k])
		}
		return r
	}
	t.Logf("throughput ratio envelope+JWT / SDK: total %.2f, median of rounds %.2f (target >= 1.0)",
		float64(len(sides[0].lat))/float64(len(sides[2].lat)), median(ratios(0)))
	t.Logf("throughput ratio envelope no auth / SDK: total %.2f, median of rounds %.2f",
		float64(len(sides[1].lat))/float64(len(sides[2].lat)), median(ratios(1)))
	fmt.Fprintf(os.Stdout, "RATIO %.2f\n", float64(len(sides[0].lat))/float64(len(sides[2].lat)))
}
