package loadgen_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/loadgen"
)

func TestRun(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "yes" || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		n.Add(1)
	}))
	defer srv.Close()
	lat, err := loadgen.Run(srv.URL, []byte("{}"), map[string]string{"X-Test": "yes"}, 4, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) == 0 || int64(len(lat)) != n.Load() {
		t.Fatalf("%d latencies for %d requests served", len(lat), n.Load())
	}
	if loadgen.Percentile(lat, 50) > loadgen.Percentile(lat, 99) {
		t.Fatal("percentiles out of order")
	}
	if _, err := loadgen.Run(srv.URL, nil, nil, 2, 50*time.Millisecond); err == nil {
		t.Fatal("a 400 answer was not reported")
	}
}
