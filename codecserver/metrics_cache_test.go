package codecserver_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestMetricsCountEveryRequestOfMany: the per-request series are resolved
// once and reused; every request is still counted, concurrent ones too,
// in the server's own registry only, and series never used stay at zero.
func TestMetricsCountEveryRequestOfMany(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	other := newEnv(t, envOptions{}) // its own Metrics: must see none of e's requests
	sealed := body(t, e.sealed("default", 1))
	tok := e.bearer("default:read")
	const clients, each = 4, 25
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if a := e.do(call{path: "/decode", body: sealed, headers: map[string]string{"Authorization": tok}}); a.status != 200 {
					t.Errorf("decode: %d %s", a.status, a.errText)
				}
			}
		}()
	}
	wg.Wait()
	for range 3 {
		e.do(call{path: "/decode", body: sealed, headers: map[string]string{"Authorization": e.bearer("billing:read")}})
	}
	metrics := string(e.do(call{method: "GET", path: "/metrics"}).body)
	n := strconv.Itoa(clients * each)
	for _, want := range []string{
		`codec_server_requests_total{code="200",route="/decode"} ` + n,
		`codec_server_requests_total{code="403",route="/decode"} 3`,
		`codec_server_request_duration_seconds_count{route="/decode"} ` + strconv.Itoa(clients*each+3),
		`codec_server_payloads_total{op="decode"} ` + n,
		`codec_server_failures_total{reason="forbidden"} 3`,
		`codec_server_decode_data_keys_total{source="cache"} ` + strconv.Itoa(clients*each-1),
		`codec_server_decode_data_keys_total{source="keyring"} 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, unused := range []string{
		`codec_server_payloads_total{op="encode"} 0`,
		`codec_server_requests_total{code="200",route="/encode"} 0`,
		`codec_server_failures_total{reason="unauthenticated"} 0`,
	} {
		if !strings.Contains(metrics, unused+"\n") {
			t.Errorf("metrics lack a series never used, at zero: %s", unused)
		}
	}
	if m := string(other.do(call{method: "GET", path: "/metrics"}).body); !strings.Contains(m, `codec_server_requests_total{code="200",route="/decode"} 0`+"\n") {
		t.Error("another server's metrics count this server's requests")
	}
}
