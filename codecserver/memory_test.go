package codecserver_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codecserver"
)

// slowRequest opens a connection and sends the head of a /decode request
// declaring contentLength bytes, then sends only the first byte of the
// body. The connection stays open until the test ends.
func slowRequest(t *testing.T, url string, contentLength int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", contentLength)
	return c
}

var inflightRE = regexp.MustCompile(`(?m)^codec_server_inflight_body_bytes (\S+)$`)

// inflight reads codec_server_inflight_body_bytes from /metrics.
func inflight(t *testing.T, srv http.Handler) int64 {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	m := inflightRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return int64(f)
}

// waitInflight polls until the gauge reads want.
func waitInflight(t *testing.T, srv http.Handler, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := inflight(t, srv)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("in-flight body bytes %d, want %d (-1: no such metric)", got, want)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

func newMemServer(t *testing.T, mutate func(*codecserver.Config)) (http.Handler, string) {
	t.Helper()
	e := newEnv(t, envOptions{noAuth: true}) // for its codec
	cfg := codecserver.Config{Codec: e.codec, Keyring: e.kr, Unauthenticated: true, Metrics: codecserver.NewMetrics(), Logger: discardLogger()}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := codecserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, hs.URL
}

// TestContentLengthIsNotTrusted: requests that declare 8 MiB and send one
// byte hold the first buffer (4 KiB), not 8 MiB each. Today's code
// allocated the declared length before a byte arrived.
func TestContentLengthIsNotTrusted(t *testing.T) {
	srv, url := newMemServer(t, nil)
	const n = 16
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		slowRequest(t, url, codecserver.DefaultMaxBodyBytes)
	}
	waitInflight(t, srv, n*4<<10)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > n<<20 {
		t.Errorf("%d requests declaring 8 MiB and sending 1 byte made the server allocate %d MiB; want under %d MiB", n, grew>>20, n)
	}
}

// metadataBody is one unsealed payload with n empty-valued metadata
// entries.
func metadataBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"payloads":[{"metadata":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":""`, i)
	}
	b.WriteString(`},"data":""}]}`)
	return []byte(b.String())
}

func TestMetadataEntriesAreCounted(t *testing.T) {
	t.Parallel()
	_, url := newMemServer(t, nil)
	_, small := newMemServer(t, func(c *codecserver.Config) { c.MaxMetadataEntries = 10 })
	two := func(each int) []byte {
		md := map[string][]byte{}
		for i := range each {
			md[fmt.Sprint("k", i)] = nil
		}
		return body(t, []*commonpb.Payload{{Metadata: md}, {Metadata: md}})
	}
	ct := [][2]string{{"Content-Type", "application/json"}}
	for _, tt := range []struct {
		name string
		url  string
		body []byte
		want int
	}{
		{"one payload with more entries than the default limit is 413", url, metadataBody(codecserver.DefaultMaxMetadataEntries + 1), 413},
		{"one payload at the default limit decodes", url, metadataBody(codecserver.DefaultMaxMetadataEntries), 200},
		{"entries of all payloads add up: 2 x 6 > 10", small, two(6), 413},
		{"2 x 5 = 10 decodes", small, two(5), 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status, _ := rawDo(t, tt.url+"/decode", tt.body, ct); status != tt.want {
				t.Errorf("status %d, want %d", status, tt.want)
			}
		})
	}
}

// TestRealHistoryPageFitsTheLimits: a request of DefaultMaxPayloads sealed
// payloads (the largest page the server takes) is under the metadata
// limit.
func TestRealHistoryPageFitsTheLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true})
	sealed := e.sealed("default", codecserver.DefaultMaxPayloads)
	if a := e.do(call{path: "/decode", body: body(t, sealed)}); a.status != 200 {
		t.Fatalf("decode of %d sealed payloads: %d %s", len(sealed), a.status, a.errText)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
