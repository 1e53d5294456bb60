package codecserver

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// auditSink writes the audit line of request r, answered with status,
// whose handling started at start.
type auditSink func(r *http.Request, op string, start time.Time, status int)

// audit returns the one audit middleware: one line per encode or decode
// request to sink, stamped with the time the request started, whichever
// sink writes it: time, request ID, subject, auth method, namespace,
// route, payload count, status, outcome, remote address and duration, and
// for a payload sealed for another namespace that namespace
// (sealed_namespace). It never logs payload data, keys or tokens.
func audit(sink auditSink, op string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			sink(r, op, start, sw.code())
		})
	}
}

// slogAudit writes audit lines to logger (Config.AuditLog), as records
// stamped with the request's start.
func slogAudit(logger *slog.Logger) auditSink {
	return func(r *http.Request, op string, start time.Time, status int) {
		h := logger.Handler()
		if !h.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		s := stateOf(r)
		rec := slog.NewRecord(start, slog.LevelInfo, "audit", 0)
		rec.AddAttrs(
			slog.String("request_id", s.id),
			slog.String("subject", s.subject),
			slog.String("auth", s.auth),
			slog.String("namespace", s.namespace),
			slog.String("route", op),
			slog.Int("count", s.count),
			slog.Int("status", status),
			slog.String("outcome", s.outcome()),
			slog.String("remote", r.RemoteAddr),
			slog.Duration("duration", time.Since(start)),
		)
		if s.sealedNamespace != "" {
			// A payload sealed for another namespace: both names.
			rec.AddAttrs(slog.String("sealed_namespace", s.sealedNamespace))
		}
		if s.erased > 0 {
			rec.AddAttrs(slog.Int("erased", s.erased))
		}
		h.Handle(r.Context(), rec)
	}
}

// outcome is the audit line's outcome: "ok" or the failure reason.
func (s *state) outcome() string {
	if s.reason != "" {
		return s.reason
	}
	return "ok"
}

// jsonAudit writes the same audit lines as slogAudit with a JSON slog
// handler (and a "log":"audit" attribute) to w (Config.AuditWriter),
// encoded by hand in one Write: the slog JSON handler was a fifth of the
// server's time on a one-payload request.
func jsonAudit(w io.Writer) auditSink {
	return func(r *http.Request, op string, start time.Time, status int) {
		writeAuditJSON(w, op, r, start, status)
	}
}

// writeAuditJSON encodes one audit line for r by hand and writes it to w in
// one Write.
func writeAuditJSON(w io.Writer, op string, r *http.Request, start time.Time, status int) {
	s := stateOf(r)
	bp := auditBufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"audit","log":"audit","request_id":`...)
	b = appendJSONStr(b, s.id)
	b = append(b, `,"subject":`...)
	b = appendJSONStr(b, s.subject)
	b = append(b, `,"auth":`...)
	b = appendJSONStr(b, s.auth)
	b = append(b, `,"namespace":`...)
	b = appendJSONStr(b, s.namespace)
	b = append(b, `,"route":`...)
	b = appendJSONStr(b, op)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(s.count), 10)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"outcome":`...)
	b = appendJSONStr(b, s.outcome())
	b = append(b, `,"remote":`...)
	b = appendJSONStr(b, r.RemoteAddr)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(time.Since(start)), 10)
	if s.sealedNamespace != "" {
		// A payload sealed for another namespace: both names.
		b = append(b, `,"sealed_namespace":`...)
		b = appendJSONStr(b, s.sealedNamespace)
	}
	if s.erased > 0 {
		b = append(b, `,"erased":`...)
		b = strconv.AppendInt(b, int64(s.erased), 10)
	}
	b = append(b, "}\n"...)
	w.Write(b)
	*bp = b
	auditBufs.Put(bp)
}

var auditBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendJSONStr appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD, as encoding/json
// and slog do (without HTML escaping).
func appendJSONStr(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
