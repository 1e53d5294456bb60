package codecserver

import (
	"fmt"
	"net/http"
)

// LimitBody returns middleware that answers 413 at once when the declared
// Content-Length is over max bytes and otherwise caps the body with
// http.MaxBytesReader, so reading past max fails with an error Classify
// maps to 413.
func (s *Server) limitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				s.fail(w, r, newError(http.StatusRequestEntityTooLarge, "body_too_large",
					fmt.Sprintf("request body is larger than %d bytes", max), nil))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, max)
			next.ServeHTTP(w, r)
		})
	}
}
