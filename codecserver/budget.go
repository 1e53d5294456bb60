package codecserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Body buffers: a request starts with a buffer of at most
// initialBodyBuffer bytes, whatever Content-Length it declares, and the
// buffer grows as bytes arrive.
const (
	initialBodyBuffer = 4 << 10
	chunkedBodyBuffer = 4 << 10
	// RetryAfterSeconds is the Retry-After of a 503 busy answer.
	RetryAfterSeconds = 1
)

// byteBudget bounds the bytes all requests hold together (bodies, the
// objects parsing makes, what /decode decompresses, answers), and what
// the requests of one identity hold: at most identityShare of max, so
// that a quarter always stays for the others.
type byteBudget struct {
	max   int64
	mu    sync.Mutex
	used  int64
	byID  map[budgetID]int64 // only identities holding something
	inUse atomic.Int64       // used, for the gauge without the lock
}

// identityShare is the part of the budget one identity may hold, in
// quarters.
const identityShare = 3

func newByteBudget(max int64) *byteBudget {
	return &byteBudget{max: max, byID: make(map[budgetID]int64)}
}

// perIdentity is the most one identity (and so one request) may hold.
func (b *byteBudget) perIdentity() int64 { return b.max / 4 * identityShare }

// reserve starts the reservation of one request of identity id.
func (b *byteBudget) reserve(id budgetID) *reservation {
	return &reservation{b: b, id: id}
}

// reservation is what one request holds of the budget. take is safe for
// concurrent use (a parallel decode's goroutines call it).
type reservation struct {
	b    *byteBudget
	id   budgetID
	held int64 // under b.mu
}

// take reserves n more bytes for the request. It fails with errTooLarge
// when the request alone would pass what one identity may hold (it could
// never be served), and with errBusy when the server, or this identity's
// other requests, leave no room now.
func (r *reservation) take(n int64) error {
	if n <= 0 {
		return nil
	}
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	per := b.perIdentity()
	if r.held+n > per {
		return errTooLarge(per)
	}
	if b.used+n > b.max || b.byID[r.id]+n > per {
		return errBusy
	}
	r.held += n
	b.used += n
	b.byID[r.id] += n
	b.inUse.Store(b.used)
	return nil
}

// release gives back everything the request holds.
func (r *reservation) release() {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.held == 0 {
		return
	}
	b.used -= r.held
	if left := b.byID[r.id] - r.held; left > 0 {
		b.byID[r.id] = left
	} else {
		delete(b.byID, r.id)
	}
	r.held = 0
	b.inUse.Store(b.used)
}

// budgetID is whose share of the budget a request uses.
type budgetID struct {
	method string // "jwt", "mtls", or "addr"
	name   string // the token subject, certificate identity or client address
}

// budgetIdentity is whose share of the budget a request uses: the token
// subject or certificate identity, else (no authentication, or a token
// without a subject) the client's address.
func budgetIdentity(id *Identity, r *http.Request) budgetID {
	if id != nil && id.Method != "none" && id.Subject != "" {
		return budgetID{id.Method, id.Subject}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return budgetID{"addr", host}
}

// errBusy refuses a request while the requests in flight fill the budget
// (or this identity's share of it).
var errBusy = newError(http.StatusServiceUnavailable, "busy",
	"the server is busy with other requests; try again shortly", nil)

// errTooLarge refuses a request that needs more memory than the server
// gives one request even when idle: retrying cannot help.
func errTooLarge(per int64) error {
	return newError(http.StatusRequestEntityTooLarge, "too_large_to_decode",
		fmt.Sprintf("the request needs more memory than the server gives one request (%d bytes: 3/4 of --max-inflight-body-bytes)", per), nil)
}

// readBody reads the (size-capped) body of r into a buffer that grows as
// bytes arrive, reserving its capacity in res. A declared Content-Length
// only sizes the first buffer, up to initialBodyBuffer: a client that
// declares 8 MiB and sends one byte a second holds 4 KiB, not 8 MiB.
func (s *Server) readBody(r *http.Request, res *reservation) (body []byte, err error) {
	max := s.cfg.MaxBodyBytes
	size := int64(chunkedBodyBuffer)
	if r.ContentLength > 0 {
		size = min(r.ContentLength, initialBodyBuffer)
	}
	size = max64(min(size, max), 1)
	if err := res.take(size); err != nil {
		return nil, err
	}
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
				return buf, nil
			}
			if n == 0 && err != nil {
				return nil, err
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
					return buf, nil
				}
				if err == nil {
					err = &http.MaxBytesError{Limit: max}
				}
				return nil, err
			}
			// Double; when the client declared a length, grow by 4x up to
			// it: bytes that arrived earn four times their size, so a
			// slow client still holds little while an honest large body
			// is copied a few times (4 KiB to 8 MiB: six).
			next := 2 * int64(cap(buf))
			if r.ContentLength > int64(cap(buf)) {
				next = min(4*int64(cap(buf)), r.ContentLength)
			}
			next = min(next, max)
			if err := res.take(next - int64(cap(buf))); err != nil {
				return nil, err
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
			buf = append(buf, one...)
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// registerBudgetGauge exports the reserved bytes as
// codec_server_inflight_body_bytes (once per registry).
func (m *Metrics) registerBudgetGauge(b *byteBudget) {
	if m == nil {
		return
	}
	_ = m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "codec_server_inflight_body_bytes",
		Help: "Bytes requests hold now (body buffers, parsed objects, decompressed bytes, answers) reserved from --max-inflight-body-bytes.",
	}, func() float64 { return float64(b.inUse.Load()) }))
}
