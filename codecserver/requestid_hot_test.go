package codecserver_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/envelopecodec/envelope/codecserver"
)

// TestRequestIDHeaderIsTheContextID: every answer carries one fresh
// X-Request-Id of 16 hex digits, the same ID the handlers see in the
// context, and a client's own ID is ignored.
func TestRequestIDHeaderIsTheContextID(t *testing.T) {
	t.Parallel()
	var inCtx string
	h := codecserver.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inCtx = codecserver.RequestIDFromContext(r.Context())
	}))
	hexID := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := map[string]bool{}
	for range 100 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/decode", nil)
		r.Header.Set("X-Request-Id", "forged")
		h.ServeHTTP(w, r)
		got := w.Result().Header.Values("X-Request-Id")
		if len(got) != 1 || !hexID.MatchString(got[0]) || got[0] != inCtx {
			t.Fatalf("X-Request-Id %q, context ID %q: want one ID of 16 hex digits, the same", got, inCtx)
		}
		if seen[got[0]] {
			t.Fatalf("request ID %s given twice", got[0])
		}
		seen[got[0]] = true
	}
}
