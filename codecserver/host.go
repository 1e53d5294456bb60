package codecserver

import (
	"net/http"

	"github.com/envelopecodec/envelope/internal/loopback"
)

// errHostNotAllowed refuses a request whose Host is not a loopback name
// while Config.LoopbackHostOnly is set.
var errHostNotAllowed = newError(http.StatusForbidden, "host_not_allowed",
	"this codec server runs without authentication and answers only requests for localhost, 127.0.0.1 or [::1]", nil)

// loopbackHostOnly returns middleware that answers 403 unless the
// request's Host names the loopback interface. Without authentication on a
// loopback address, this is what stops DNS rebinding: a web page on
// attacker.example whose name the attacker re-points to 127.0.0.1 calls
// the server from the browser as a same-origin request (so CORS does not
// apply), but with Host attacker.example.
func (s *Server) loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopbackHost(r.Host) {
			s.fail(w, r, errHostNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IsLoopbackHost reports whether host, a Host header value with or without
// a port, is "localhost" (in any case) or a loopback IP address
// (127.0.0.0/8, ::1).
func IsLoopbackHost(host string) bool { return loopback.Host(host) }
