package codecserver

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/cors"
)

// DefaultCORSMaxAge is how long browsers may cache a preflight answer.
const DefaultCORSMaxAge = 10 * time.Minute

// NormalizeOrigin checks an allowed origin and returns it as a browser
// sends it in the Origin header: scheme://host[:port] in lower case,
// without a trailing slash or a default port. "*", paths, queries and
// user info are refused: browsers drop credentials with a wildcard.
func NormalizeOrigin(origin string) (string, error) {
	o := strings.TrimSpace(origin)
	if o == "*" || strings.Contains(o, "*") {
		return "", errors.New("CORS origin \"*\" is refused: browsers send no credentials to a wildcard origin; list exact origins such as http://localhost:8233")
	}
	u, err := url.Parse(o)
	if err != nil {
		return "", fmt.Errorf("CORS origin %q: %w", origin, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("CORS origin %q: want http:// or https://", origin)
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("CORS origin %q: want scheme://host[:port] only", origin)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return scheme + "://" + host + ":" + port, nil
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}

// CORS returns middleware that answers preflight requests and adds CORS
// headers for the listed origins only, with credentials allowed, the
// headers Content-Type, X-Namespace, Authorization and
// Authorization-Extras (the Web UI's ID token, ignored), X-Request-Id and
// X-Erased-Payloads exposed, and preflights cached for maxAge (DefaultCORSMaxAge if zero).
// A request from any other origin gets no CORS headers. It fails on "*" or
// a malformed origin. With no origins it returns a pass-through.
func CORS(origins []string, maxAge time.Duration) (func(http.Handler) http.Handler, error) {
	if len(origins) == 0 {
		return func(next http.Handler) http.Handler { return next }, nil
	}
	norm := make([]string, 0, len(origins))
	for _, o := range origins {
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("codecserver: %w", err)
		}
		norm = append(norm, n)
	}
	if maxAge <= 0 {
		maxAge = DefaultCORSMaxAge
	}
	allowed := make(map[string]bool, len(norm))
	for _, o := range norm {
		allowed[o] = true
	}
	// The Web UI with OIDC sign-in sends the ID token in
	// Authorization-Extras next to the access token in Authorization; the
	// server ignores it, but the preflight must allow it.
	c := cors.New(cors.Options{
		// An exact, case-sensitive comparison of what the browser sends.
		AllowOriginFunc:  func(origin string) bool { return allowed[origin] },
		AllowedMethods:   []string{http.MethodPost, http.MethodGet},
		AllowedHeaders:   []string{"Content-Type", "X-Namespace", "Authorization", "Authorization-Extras"},
		ExposedHeaders:   []string{RequestIDHeader, ErasedHeader},
		AllowCredentials: true,
		MaxAge:           int(maxAge / time.Second),
	})
	return c.Handler, nil
}
