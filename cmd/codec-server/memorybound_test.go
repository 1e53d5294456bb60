package main

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
)

// These tests attack the real binary under its default limits (JWT and
// the audit log on, GOMEMLIMIT=256MiB as deploy/kubernetes sets it) and
// measure its peak resident memory (VmHWM) against the bounds
// docs/SERVER.md states; a fresh process each, so the peak is the
// attack's.

// postToken sends body to path with token and returns the status and answer.
func postToken(t *testing.T, client *http.Client, url, path, token string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", token)
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// alive fails the test unless the server answers /healthz within 30 s.
func alive(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not alive after the attack: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

var inflightRE = regexp.MustCompile(`(?m)^codec_server_inflight_body_bytes (\S+)$`)

// inflightBytes reads codec_server_inflight_body_bytes from /metrics.
func inflightBytes(t *testing.T, url string) int64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := inflightRE.FindSubmatch(b)
	if m == nil {
		t.Fatal("no codec_server_inflight_body_bytes in /metrics")
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return int64(v)
}

// peakGrowth reports VmHWM minus the idle VmRSS, in MiB.
func peakGrowth(t *testing.T, pid int, idleKB int64) int64 {
	return (procKB(t, pid, "VmHWM") - idleKB) >> 10
}

// zlibBombBody is a /decode body of one binary/zlib payload (5.5 KB)
// whose data inflates to 4 MiB of empty external payload details (0x1a
// 0x00): two million objects once unmarshalled.
func zlibBombBody(t *testing.T) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	w.Write(bytes.Repeat([]byte{0x1a, 0x00}, 2<<20))
	w.Close()
	p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(codec.EncodingZlib)}, Data: buf.Bytes()}
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProtobufBombsStayBounded: two concurrent protobuf bombs add less
// than 96 MiB to the peak, compressed (--zlib, the default: any reader may
// send one) and compressed then sealed through /encode (--zlib=false: a
// writer plants it in a history, every viewer decodes it). Both are
// refused; the server stays up. Before: 268 MB for one.
func TestProtobufBombsStayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	f := newMemFixture(t)
	bomb := zlibBombBody(t)
	writer := f.iss.Bearer(t, jwttest.Claims{Subject: "writer", Permissions: []string{"default:write"}})
	client := &http.Client{}
	for _, tt := range []struct {
		name   string
		flags  []string
		sealed bool
	}{
		{"compressed", nil, false},
		{"compressed, sealed through /encode", []string{"--zlib=false"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url, pid := f.server(t, tt.flags...)
			body := bomb
			if tt.sealed {
				status, out := postToken(t, client, url, "/encode", writer, bomb)
				if status != 200 {
					t.Fatalf("/encode of the bomb: status %d", status)
				}
				body = out
			}
			idle := procKB(t, pid, "VmRSS")
			var wg sync.WaitGroup
			statuses := make([]int, 2)
			for i := range statuses {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses[i], _ = postToken(t, client, url, "/decode", f.token, body)
				}()
			}
			wg.Wait()
			grew := peakGrowth(t, pid, idle)
			t.Logf("two %d-byte bombs: statuses %v, peak RSS +%d MiB", len(body), statuses, grew)
			for _, s := range statuses {
				if s == 200 {
					t.Errorf("a bomb was decoded (200); want it refused")
				}
			}
			if grew >= 96 {
				t.Errorf("two concurrent bombs added %d MiB to the peak RSS, want < 96 MiB", grew)
			}
			alive(t, url)
		})
	}
}

// TestExternalPayloadsBodyStaysBounded: one 8 MiB body of empty
// externalPayloads entries adds less than 150 MiB to the peak and is
// refused (413). Before: parsed whole, 352 MB, answered 200.
func TestExternalPayloadsBodyStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	f := newMemFixture(t)
	const head, tail = `{"payloads":[{"externalPayloads":[`, `{}]}]}`
	n := (codecserver.DefaultMaxBodyBytes - len(head) - len(tail) - 16) / 3
	body := []byte(head + strings.Repeat(`{},`, n) + tail)
	url, pid := f.server(t)
	idle := procKB(t, pid, "VmRSS")
	status, _ := postToken(t, &http.Client{}, url, "/decode", f.token, body)
	grew := peakGrowth(t, pid, idle)
	t.Logf("%d-byte body of %d external payloads: status %d, peak RSS +%d MiB", len(body), n+1, status, grew)
	if status != 413 {
		t.Errorf("status %d, want 413", status)
	}
	if grew >= 150 {
		t.Errorf("the body added %d MiB to the peak RSS, want < 150 MiB", grew)
	}
	alive(t, url)
}

// TestSlowHeadersStayBounded: 3,000 unauthenticated connections, each
// sending an unfinished header line, keep the peak under 256 MiB: a line
// of 60 KB passes the 32 KiB header limit and is refused (431); one of 30
// KB is held until --read-header-timeout, but --max-connections accepts
// only 1,024 at once (the rest wait in the kernel's backlog). Before:
// 339-431 MB, and every connection accepted.
func TestSlowHeadersStayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	f := newMemFixture(t)
	for _, size := range []int{60_000, 30_000} {
		t.Run(fmt.Sprintf("%d-byte header line", size), func(t *testing.T) {
			url, pid := f.server(t)
			conns := slowHeaders(t, strings.TrimPrefix(url, "http://"), 3000, size)
			// The server takes what it accepts at once; count its sockets
			// while the attack lasts.
			most := 0
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
				most = max(most, openFiles(t, pid))
				time.Sleep(20 * time.Millisecond) // sampling over a window
			}
			peak := procKB(t, pid, "VmHWM") >> 10
			t.Logf("3,000 slow %d-byte header lines (%d connected): peak RSS %d MiB, at most %d open files", size, len(conns), peak, most)
			if peak >= 256 {
				t.Errorf("peak RSS %d MiB, want < 256 MiB", peak)
			}
			if most > codecserver.DefaultMaxConnections+64 {
				t.Errorf("the server held %d open files, want at most --max-connections (%d) and a few of its own", most, codecserver.DefaultMaxConnections)
			}
			for _, c := range conns {
				c.Close()
			}
			alive(t, url)
			// The header limit leaves room for the largest token the
			// server takes (16 KiB): it is judged (401), not refused as
			// too large (431).
			status, _ := postToken(t, &http.Client{}, url, "/decode", "Bearer "+strings.Repeat("a", 16<<10), []byte(`{"payloads":[]}`))
			if status != http.StatusUnauthorized {
				t.Errorf("a 16 KiB token: status %d, want 401", status)
			}
		})
	}
}

// slowHeaders opens n connections to addr, each sending the start of a
// request whose header line is size bytes long and never ends.
func slowHeaders(t *testing.T, addr string, n, size int) []net.Conn {
	line := "POST /decode HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + strings.Repeat("a", size)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 20*time.Second)
			if err != nil {
				return // the kernel's backlog is full: the attack is refused
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(c, line) // the server may refuse and close: ignore
		}()
		if i%100 == 99 {
			time.Sleep(10 * time.Millisecond) // let the accept loop run
		}
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// openFiles counts the file descriptors of process pid.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestOneIdentityCannotStarveAnother: a token holding 450 slow bodies
// (each has sent 70 KB of a declared 8 MiB) takes at most its share of the
// in-flight budget; another user's decodes are all served. Before: 384
// such connections made every other user's decode 503.
func TestOneIdentityCannotStarveAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	f := newMemFixture(t)
	url, _ := f.server(t)
	addr := strings.TrimPrefix(url, "http://")
	attacker := f.iss.Bearer(t, jwttest.Claims{Subject: "mallory", Permissions: []string{"sandbox:read"}})
	pad := strings.Repeat(" ", 70_000)
	var wg sync.WaitGroup
	for range 450 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(c, "POST /sandbox/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n{%s", attacker, codecserver.DefaultMaxBodyBytes, pad)
		}()
	}
	wg.Wait()
	// The attack is in place once its bodies hold most of a share.
	deadline := time.Now().Add(30 * time.Second)
	for inflightBytes(t, url) < 20<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow bodies hold %d bytes of the budget after 30 s", inflightBytes(t, url))
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: bytes.Repeat([]byte{'x'}, 1024)}}
	sealed, err := f.codec.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	client := &http.Client{}
	counts := map[int]int{}
	for range 50 {
		status, _ := postToken(t, client, url, "/decode", f.token, body)
		counts[status]++
	}
	t.Logf("another user's 50 decodes while one identity holds 450 slow bodies: %v", counts)
	if counts[200] != 50 {
		t.Errorf("statuses %v, want all 200", counts)
	}
	alive(t, url)
}
