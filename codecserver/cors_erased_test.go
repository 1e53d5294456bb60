package codecserver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/codecserver"
)

// TestCORSExposesErasedHeader: a browser page of an allowed origin can
// read how many payloads were erased (docs/ERASURE.md), as it can read
// X-Request-Id; headers not exposed are hidden from cross-origin scripts.
func TestCORSExposesErasedHeader(t *testing.T) {
	t.Parallel()
	mw, err := codecserver.CORS([]string{"https://ui.example.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(codecserver.ErasedHeader, "1")
	}))
	req := httptest.NewRequest(http.MethodPost, "/decode", nil)
	req.Header.Set("Origin", "https://ui.example.com")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	exposed := strings.ToLower(strings.Join(rec.Header().Values("Access-Control-Expose-Headers"), ","))
	for _, want := range []string{codecserver.RequestIDHeader, codecserver.ErasedHeader} {
		if !strings.Contains(exposed, strings.ToLower(want)) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, want)
		}
	}
}
