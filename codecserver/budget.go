package codecserver

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Body buffers: a request starts with a buffer of at most
// initialBodyBuffer bytes, whatever Content-Length it declares, and the
// buffer doubles as bytes arrive.
const (
	initialBodyBuffer = 64 << 10
	chunkedBodyBuffer = 16 << 10
	// RetryAfterSeconds is the Retry-After of a 503 busy answer.
	RetryAfterSeconds = 1
)

// byteBudget bounds the body bytes all requests hold together.
type byteBudget struct {
	used atomic.Int64
	max  int64
}

// acquire reserves n bytes, or reports false when that would pass max.
func (b *byteBudget) acquire(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *byteBudget) release(n int64) { b.used.Add(-n) }

// errBusy refuses a request while the bodies in flight fill the budget.
var errBusy = newError(http.StatusServiceUnavailable, "busy",
	"the server is busy with other requests; try again shortly", nil)

// readBody reads the (size-capped) body of r into a buffer that grows as
// bytes arrive, reserving its capacity from the server's in-flight budget;
// release must be called with the returned reservation once the request no
// longer needs the body. A declared Content-Length only sizes the first
// buffer, up to initialBodyBuffer: a client that declares 8 MiB and sends
// one byte a second holds 64 KiB, not 8 MiB.
func (s *Server) readBody(r *http.Request) (body []byte, reserved int64, err error) {
	max := s.cfg.MaxBodyBytes
	size := int64(chunkedBodyBuffer)
	if r.ContentLength > 0 {
		size = min(r.ContentLength, initialBodyBuffer)
	}
	size = max64(min(size, max), 1)
	if !s.budget.acquire(size) {
		return nil, 0, errBusy
	}
	reserved = size
	buf := make([]byte, 0, size)
	for {
		var one []byte // a byte read past the declared length
		if len(buf) == cap(buf) && int64(len(buf)) == r.ContentLength && int64(cap(buf)) < max {
			// Every declared byte is here. A body that does not report
			// EOF with its last bytes (HTTP/2, wrapped readers) would
			// have the buffer doubled below only to read nothing: ask
			// for one more byte first.
			probe := make([]byte, 1)
			n, err := r.Body.Read(probe)
			if n == 0 && errors.Is(err, io.EOF) {
				return buf, reserved, nil
			}
			if n == 0 && err != nil {
				return nil, reserved, err
			}
			one = probe[:n] // more than declared: grow below, keep it
		}
		if len(buf) == cap(buf) {
			if int64(cap(buf)) >= max {
				// At the limit: one more read says whether the body ends
				// here (EOF) or is too large (MaxBytesError).
				var one [1]byte
				n, err := r.Body.Read(one[:])
				if n == 0 && errors.Is(err, io.EOF) {
					return buf, reserved, nil
				}
				if err == nil {
					err = &http.MaxBytesError{Limit: max}
				}
				return nil, reserved, err
			}
			// Double; when the client declared a length, grow by 4x up to
			// it: bytes that arrived earn four times their size, so a
			// slow client still holds little while an honest large body
			// is copied at most twice.
			next := 2 * int64(cap(buf))
			if r.ContentLength > int64(cap(buf)) {
				next = min(4*int64(cap(buf)), r.ContentLength)
			}
			next = min(next, max)
			if !s.budget.acquire(next - int64(cap(buf))) {
				return nil, reserved, errBusy
			}
			reserved += next - int64(cap(buf))
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
			buf = append(buf, one...)
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, reserved, nil
		}
		if err != nil {
			return nil, reserved, err
		}
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// registerBudgetGauge exports the reserved body bytes as
// codec_server_inflight_body_bytes (once per registry).
func (m *Metrics) registerBudgetGauge(b *byteBudget) {
	if m == nil {
		return
	}
	_ = m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "codec_server_inflight_body_bytes",
		Help: "Request body bytes the server holds now (buffer capacity reserved from --max-inflight-body-bytes).",
	}, func() float64 { return float64(b.used.Load()) }))
}

func setRetryAfter(w http.ResponseWriter, err error) {
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
}
