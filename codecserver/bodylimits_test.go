package codecserver_test

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/codecserver"
)

// emptyPayloadsBody is {"payloads":[{},{},...]} with n payloads: ~3 bytes
// each, which protojson would turn into n messages.
func emptyPayloadsBody(n int) []byte {
	var b bytes.Buffer
	b.Grow(3*n + 16)
	b.WriteString(`{"payloads":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("{}")
	}
	b.WriteString("]}")
	return b.Bytes()
}

// TestManyEmptyPayloadsAreRefusedBeforeParsing is not parallel: it
// measures what the process allocates while the server answers, so no
// other test may run meanwhile.
func TestManyEmptyPayloadsAreRefusedBeforeParsing(t *testing.T) {
	e := newEnv(t, envOptions{noAuth: true}) // default limits
	const n = 1_000_000
	b := emptyPayloadsBody(n)
	if int64(len(b)) > codecserver.DefaultMaxBodyBytes {
		t.Fatalf("test body of %d bytes is over the default body limit", len(b))
	}
	for _, path := range []string{"/decode", "/encode"} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a := e.do(call{path: path, body: b})
		runtime.ReadMemStats(&after)
		if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.errText, fmt.Sprintf("at most %d", codecserver.DefaultMaxPayloads)) {
			t.Fatalf("%s of %d empty payloads: %d %q, want 413 naming the limit", path, n, a.status, a.errText)
		}
		if line := logLine(t, e.log.String(), a.header.Get("X-Request-Id")); line == nil || line["reason"] != "too_many_payloads" {
			t.Errorf("%s: no failure log line with reason too_many_payloads: %v", path, line)
		}
		// Reading the body takes len(b); protojson would take ~50x that.
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d-byte body, %d bytes allocated", path, len(b), alloc)
		if alloc > uint64(4*len(b)) {
			t.Errorf("%s: answering %d-byte body of %d empty payloads allocated %d MB, want under %d MB: refuse before parsing",
				path, len(b), n, alloc>>20, 4*len(b)>>20)
		}
	}
	// Below the limit such a body is still served.
	a := e.do(call{path: "/decode", body: emptyPayloadsBody(codecserver.DefaultMaxPayloads)})
	if a.status != 200 || len(a.payloads(t)) != codecserver.DefaultMaxPayloads {
		t.Fatalf("%d empty payloads: %d %q, want 200", codecserver.DefaultMaxPayloads, a.status, a.errText)
	}
}

func TestTooManyPayloadsBeforeMalformedJSONIs413(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) { c.MaxPayloads = 10 }})
	b := emptyPayloadsBody(11)
	truncated := b[:len(b)-2]
	if a := e.do(call{path: "/decode", body: truncated}); a.status != 413 {
		t.Errorf("11 payloads then a truncated body: %d %q, want 413", a.status, a.errText)
	}
	garbage := append(emptyPayloadsBody(3)[:10], []byte(`{},{},x`+strings.Repeat(" ", 64))...)
	if a := e.do(call{path: "/decode", body: garbage}); a.status != 400 || !strings.Contains(a.errText, "malformed request") {
		t.Errorf("malformed body under the limit: %d %q, want 400 malformed request", a.status, a.errText)
	}
}
