package codecserver

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
)

// eofAfterReader returns its data and only then, on a read of its own,
// io.EOF, as HTTP/2 request bodies do (HTTP/1.1 bodies return io.EOF with
// their last bytes).
type eofAfterReader struct{ r *bytes.Reader }

func (e eofAfterReader) Read(p []byte) (int, error) {
	if e.r.Len() == 0 {
		return 0, io.EOF
	}
	return e.r.Read(p)
}

func TestReadBodyDoesNotGrowPastTheDeclaredLength(t *testing.T) {
	t.Parallel()
	srv := &Server{cfg: Config{MaxBodyBytes: 1 << 20}, budget: newByteBudget(4 << 20)}
	for _, tt := range []struct {
		name     string
		body     string
		declared int64
		wantCap  int // capacity (and reservation) of the buffer read
	}{
		{"a body of exactly the declared length gets a buffer of that length", strings.Repeat("a", 421), 421, 421},
		{"a one-byte body", "x", 1, 1},
		{"a body longer than declared is read whole", strings.Repeat("b", 100), 60, 120},
		{"a body of undeclared length", strings.Repeat("c", 100), -1, chunkedBodyBuffer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, "/decode", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Body = io.NopCloser(eofAfterReader{bytes.NewReader([]byte(tt.body))})
			r.ContentLength = tt.declared
			res := srv.budget.reserve(budgetID{"addr", "test"})
			got, err := srv.readBody(r, res)
			reserved := res.held
			defer res.release()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.body {
				t.Errorf("read %d bytes %.10q…, want %d bytes %.10q…", len(got), got, len(tt.body), tt.body)
			}
			if cap(got) != tt.wantCap || reserved != int64(tt.wantCap) {
				t.Errorf("buffer capacity %d, reserved %d, want %d", cap(got), reserved, tt.wantCap)
			}
		})
	}
	if used := srv.budget.inUse.Load(); used != 0 {
		t.Errorf("budget holds %d bytes after every release", used)
	}
}

func TestReadBodyAtTheLimitStillRefusesMore(t *testing.T) {
	t.Parallel()
	const max = 64
	srv := &Server{cfg: Config{MaxBodyBytes: max}, budget: newByteBudget(4 * max)}
	for _, tt := range []struct {
		name     string
		size     int
		declared int64
		tooLarge bool
	}{
		{"a body at the limit, declared", max, max, false},
		{"a body over the limit, declared at it", max + 10, max, true},
		{"a body over the limit, declared below it", max + 10, max - 4, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "/decode", nil)
			r.Body = http.MaxBytesReader(nil, io.NopCloser(eofAfterReader{bytes.NewReader(bytes.Repeat([]byte("z"), tt.size))}), max)
			r.ContentLength = tt.declared
			res := srv.budget.reserve(budgetID{"addr", "test"})
			got, err := srv.readBody(r, res)
			res.release()
			var mbe *http.MaxBytesError
			if tt.tooLarge != (err != nil && errors.As(err, &mbe)) {
				t.Fatalf("err %v, want too large: %v", err, tt.tooLarge)
			}
			if !tt.tooLarge && len(got) != tt.size {
				t.Errorf("read %d bytes, want %d", len(got), tt.size)
			}
		})
	}
}

func TestTokenHashIsSHA256(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 900, 4095, 4096, 4097, maxTokenBytes} {
		tok := strings.Repeat("t", n)
		if got, want := tokenHash(tok), sha256.Sum256([]byte(tok)); got != want {
			t.Errorf("tokenHash of %d bytes = %x, want %x", n, got, want)
		}
	}
	if tokenHash("a.b.c") == tokenHash("a.b.d") {
		t.Error("two tokens hash alike")
	}
}

func TestIsJSONAgreesWithParseMediaType(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{
		"application/json", "application/json; charset=utf-8", "Application/JSON", "APPLICATION/JSON",
		"application/json;", " application/json", "application/json ", "application/jsonx", "application/json+x",
		"text/plain", "", "application/json; charset", "application/json; a=1; a=2", "application/x-www-form-urlencoded",
	} {
		mt, _, err := mime.ParseMediaType(ct)
		if want := err == nil && mt == "application/json"; isJSON(ct) != want {
			t.Errorf("isJSON(%q) = %v, want %v", ct, !want, want)
		}
	}
}
