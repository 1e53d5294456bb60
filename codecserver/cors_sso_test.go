package codecserver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/codecserver"
)

// TestCORSWebUISignedIn checks the preflight the Web UI 2.42.1 makes when a
// user is signed in with OIDC and "pass access token" is on: besides
// Authorization (the access token) it sends the ID token in
// Authorization-Extras, so the browser asks for both. Without
// Authorization-Extras in the allowed headers the preflight gets no
// Access-Control-Allow-Origin and the UI reports "Codec Server could not
// connect" (seen in e2e/sso_test.go).
func TestCORSWebUISignedIn(t *testing.T) {
	t.Parallel()
	const origin = "https://temporal-ui.example.com"
	mw, err := codecserver.CORS([]string{origin}, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, headers := range []string{
		"authorization,authorization-extras,content-type,x-namespace", // signed in
		"authorization,content-type,x-namespace",                      // no ID token
		"content-type,x-namespace",                                    // UI without sign-in
	} {
		t.Run(headers, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodOptions, "/decode", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", headers)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != origin {
				t.Fatalf("Access-Control-Allow-Origin = %q, want %q (status %d, headers %v)", got, origin, rec.Code, rec.Header())
			}
			allowed := strings.ToLower(rec.Header().Get("Access-Control-Allow-Headers"))
			for _, h := range strings.Split(headers, ",") {
				if !strings.Contains(allowed, h) {
					t.Errorf("Access-Control-Allow-Headers = %q lacks %s", allowed, h)
				}
			}
		})
	}
}
