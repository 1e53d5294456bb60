package codecserver

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAuditJSONMatchesSlog: the hand-encoded audit line carries the same
// fields and values as the slog JSON handler's, for hostile values too.
func TestAuditJSONMatchesSlog(t *testing.T) {
	t.Parallel()
	for _, st := range []state{
		{id: "0123456789abcdef", subject: "alice@example.com", auth: "jwt", namespace: "default", count: 3},
		{id: "x", subject: "evil\"\\\n\r\t\x00\x1f\u2028\u2029<>&é\xff\xfe", auth: "mtls", namespace: `"bad\"ns"`, reason: "forbidden"},
	} {
		var fast, ref bytes.Buffer
		run := func(mw func(http.Handler) http.Handler) {
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				*stateOf(r) = st
				w.WriteHeader(http.StatusTeapot)
			}))
			s := st
			req := httptest.NewRequest("POST", "/decode", nil).WithContext(context.WithValue(context.Background(), stateKey{}, &s))
			req.RemoteAddr = "10.0.0.1:1234\n"
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
		run(audit(jsonAudit(&fast), "decode"))
		run(audit(slogAudit(slog.New(slog.NewJSONHandler(&ref, nil)).With("log", "audit")), "decode"))
		var a, b map[string]any
		if err := json.Unmarshal(fast.Bytes(), &a); err != nil {
			t.Fatalf("hand-encoded line is not JSON: %v: %q", err, fast.Bytes())
		}
		if err := json.Unmarshal(ref.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		if bytes.Count(fast.Bytes(), []byte("\n")) != 1 {
			t.Errorf("line %q is not one line", fast.Bytes())
		}
		for _, k := range []string{"time", "duration"} {
			if _, ok := a[k]; !ok {
				t.Errorf("no %s in %q", k, fast.Bytes())
			}
			delete(a, k)
			delete(b, k)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Errorf("hand-encoded %s\nslog         %s", ja, jb)
		}
	}
}
