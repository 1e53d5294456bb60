package loadgen_test

import (
	"context"
	"errors"
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

// TestPacedRecordsStartsItCannotSend: answers that stall do not slow the
// pace; starts beyond maxInFlight are recorded as ErrBusy samples.
func TestPacedRecordsStartsItCannotSend(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	time.AfterFunc(400*time.Millisecond, func() { close(release) }) // after ctx ends
	samples := loadgen.Paced(ctx, 100, 5, func(ctx context.Context, seq int) loadgen.Sample {
		t0 := time.Now()
		<-release
		return loadgen.Sample{Start: t0, Latency: time.Since(t0), Status: 200}
	})
	sent, busy := 0, 0
	for i, s := range samples {
		switch {
		case s.Status == 200:
			sent++
		case errors.Is(s.Err, loadgen.ErrBusy):
			busy++
		default:
			t.Errorf("sample %d: %+v", i, s)
		}
		if i > 0 && s.Start.Before(samples[i-1].Start) {
			t.Errorf("sample %d starts before sample %d", i, i-1)
		}
	}
	if sent != 5 || busy == 0 {
		t.Fatalf("%d sent and %d busy, want 5 sent (maxInFlight) and the other starts busy", sent, busy)
	}
}
