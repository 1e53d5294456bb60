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
	count           int
	reason          string // failure reason label; "" on success
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
		s := &state{id: hex.EncodeToString(b[:])}
		w.Header().Set(RequestIDHeader, s.id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, s)))
	})
}
