package codecserver

import (
	"log/slog"
	"net/http"
	"time"
)

// audit returns middleware that writes one line per encode or decode
// request to logger: time, request ID, subject, auth method, namespace,
// route, payload count, status, outcome and remote address, and for a
// payload sealed for another namespace that namespace (sealed_namespace).
// It never logs
// payload data, keys or tokens.
func audit(logger *slog.Logger, op string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			s := stateOf(r)
			out := "ok"
			if s.reason != "" {
				out = s.reason
			}
			attrs := []slog.Attr{
				slog.String("request_id", s.id),
				slog.String("subject", s.subject),
				slog.String("auth", s.auth),
				slog.String("namespace", s.namespace),
				slog.String("route", op),
				slog.Int("count", s.count),
				slog.Int("status", sw.code()),
				slog.String("outcome", out),
				slog.String("remote", r.RemoteAddr),
				slog.Duration("duration", time.Since(start)),
			}
			if s.sealedNamespace != "" {
				// A payload sealed for another namespace: both names.
				attrs = append(attrs, slog.String("sealed_namespace", s.sealedNamespace))
			}
			logger.LogAttrs(r.Context(), slog.LevelInfo, "audit", attrs...)
		})
	}
}
