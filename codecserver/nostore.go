package codecserver

import "net/http"

// noStore marks every answer Cache-Control: no-store. Decode answers hold
// plaintext; error answers of the same routes (the body limit's 413, the
// router's 405) and everything else the server says are not worth caching
// either, and one middleware cannot miss a route.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
