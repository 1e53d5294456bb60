package codecserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// RequestIDHeader carries the request ID on every answer.
const RequestIDHeader = "X-Request-Id"

// state is what the middleware and handlers learn about one request, for
// the failure log, metrics and the audit line.
type state struct {
	id        string
	subject   string
	auth      string // "jwt", "mtls", "none"
	namespace string
	// sealedNamespace is the namespace a refused payload was sealed for
	// (codec.ErrNamespace), for the audit line.
	sealedNamespace string
	// erased counts the payloads of a decode shown as erased.
	erased int
	count  int
	reason string // failure reason label; "" on success
	// idHeader backs the X-Request-Id header value: one allocation per
	// request fewer than Header.Set.
	idHeader [1]string
}

type stateKey struct{}

func stateOf(r *http.Request) *state {
	if s, ok := r.Context().Value(stateKey{}).(*state); ok {
		return s
	}
	return &state{}
}

// RequestIDFromContext returns the ID RequestID gave the request, or "".
func RequestIDFromContext(ctx context.Context) string {
	if s, ok := ctx.Value(stateKey{}).(*state); ok {
		return s.id
	}
	return ""
}

// RequestID gives every request a fresh random ID, sets it as the
// X-Request-Id response header before anything else answers, and puts it
// in the context for logs. A client's own X-Request-Id is ignored: it
// would let a caller forge or collide with the IDs of other requests.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		rand.Read(b[:])
		var id [16]byte
		hex.Encode(id[:], b[:])
		s := &state{id: string(id[:])}
		s.idHeader[0] = s.id
		w.Header()[RequestIDHeader] = s.idHeader[:] // RequestIDHeader is in canonical form
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, s)))
	})
}
