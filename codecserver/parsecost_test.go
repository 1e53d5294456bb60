package codecserver_test

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
)

var jsonCT = [][2]string{{"Content-Type", "application/json"}}

// zlibOf returns a binary/zlib payload (the SDK's zlib codec's form) whose
// data inflates to raw, any bytes: a marshalled payload or not.
func zlibOf(t testing.TB, raw []byte) *commonpb.Payload {
	t.Helper()
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	w.Write(raw)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(codec.EncodingZlib)}, Data: buf.Bytes()}
}

// protobufBomb is n empty external payload details (0x1a 0x00 each): the
// marshalled form of a payload whose 2n bytes unmarshal into n objects.
func protobufBomb(n int) []byte { return bytes.Repeat([]byte{0x1a, 0x00}, n) }

// zlibChain makes the server's chain the binary's: the envelope codec,
// then a decode-only zlib codec, both with the given decompression limit
// (0: the codec's default).
func zlibChain(max int64, mutate func(*codecserver.Config)) func(*codecserver.Config) {
	return func(c *codecserver.Config) {
		cdc := c.Codec
		if max > 0 {
			var err error
			if cdc, err = codec.New(c.Keyring, codec.Options{MaxDecompressedBytes: max}); err != nil {
				panic(err)
			}
		}
		c.Codecs = []converter.PayloadCodec{cdc, codec.NewZlib(codec.ZlibOptions{DecodeOnly: true, MaxDecompressedBytes: max})}
		c.Codec = nil
		if mutate != nil {
			mutate(c)
		}
	}
}

// TestProtobufBombsAreRefusedBeforeTheyUnmarshal: 1 MiB of empty external
// payload details (5 KB of zlib) unmarshal into half a million objects,
// ~50 MB of heap. The decode charges them before they exist and refuses
// the payload, compressed (the SDK's zlib codec) or compressed and sealed
// (planted through /encode); every reservation is given back. Before, both
// decoded (200), holding 50 times the decompressed size.
func TestProtobufBombsAreRefusedBeforeTheyUnmarshal(t *testing.T) {
	t.Parallel()
	srv, url := newMemServer(t, zlibChain(0, nil))
	bomb := zlibOf(t, protobufBomb(1<<19))
	sealedBomb := encodeVia(t, url, bomb)
	for _, tt := range []struct {
		name string
		p    *commonpb.Payload
	}{{"compressed", bomb}, {"compressed, then sealed through /encode", sealedBomb}} {
		b := body(t, []*commonpb.Payload{tt.p})
		status, _ := rawDo(t, url+"/decode", b, jsonCT)
		if status != http.StatusUnprocessableEntity && status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: a %d-byte body unmarshalling into %d objects: status %d, want 422 or 413", tt.name, len(b), 1<<19, status)
		}
		waitInflight(t, srv, 0)
	}
}

// encodeVia seals p through the server's /encode, as a writer would plant
// it in a history.
func encodeVia(t *testing.T, url string, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	resp, err := http.Post(url+"/encode", "application/json", bytes.NewReader(body(t, []*commonpb.Payload{p})))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out commonpb.Payloads
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/encode: status %d: %s", resp.StatusCode, buf.String())
	}
	if err := protojson.Unmarshal(buf.Bytes(), &out); err != nil || len(out.Payloads) != 1 {
		t.Fatalf("/encode answer: %v", err)
	}
	return out.Payloads[0]
}

// TestMetadataInsideSealedPayloadsIsCounted: sealed payloads whose
// plaintext holds 100,000 metadata entries each (5 of them: ~60 MB of heap
// once unmarshalled) are refused with 413 before they are unmarshalled:
// the JSON scan cannot see inside them, the decode counts them against
// --max-metadata-entries and, past that, charges them to the in-flight
// budget. Before: 200.
func TestMetadataInsideSealedPayloadsIsCounted(t *testing.T) {
	t.Parallel()
	var cdc *codec.Codec
	srv, url := newMemServer(t, func(c *codecserver.Config) { cdc = c.Codec })
	unlimited, uurl := newMemServer(t, func(c *codecserver.Config) { c.Codec, c.MaxMetadataEntries = cdc, 1<<30 })
	sealed := func(payloads, entries int) []byte {
		md := make(map[string][]byte, entries)
		for i := range entries {
			md[fmt.Sprint("k", i)] = nil
		}
		in := make([]*commonpb.Payload, payloads)
		for i := range in {
			in[i] = &commonpb.Payload{Metadata: md}
		}
		out, err := cdc.Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		return body(t, out)
	}
	five, one := sealed(5, 100000), sealed(1, 99000)
	for _, tt := range []struct {
		name string
		srv  http.Handler
		url  string
		body []byte
		want int
	}{
		{"5 x 100,000 entries inside sealed payloads pass --max-metadata-entries", srv, url, five, 413},
		{"without that limit, the budget refuses them", unlimited, uurl, five, 413},
		{"1 x 99,000 entries decodes", srv, url, one, 200},
	} {
		if status, _ := rawDo(t, tt.url+"/decode", tt.body, jsonCT); status != tt.want {
			t.Errorf("%s (%d-byte body): status %d, want %d", tt.name, len(tt.body), status, tt.want)
		}
		waitInflight(t, tt.srv, 0)
	}
}

// TestExternalPayloadsCountAsPayloads: each element of a payload's
// externalPayloads (3 bytes of JSON, ~100 bytes of heap) counts against
// --max-payloads before protojson makes it. Before, an 8 MB body of them
// was parsed whole (352 MB) and answered 200.
func TestExternalPayloadsCountAsPayloads(t *testing.T) {
	t.Parallel()
	_, url := newMemServer(t, nil)
	ext := func(name string, n int) []byte {
		return []byte(`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"` + name + `":[` + strings.Repeat(`{},`, n-1) + `{}]}]}`)
	}
	for _, tt := range []struct {
		name string
		body []byte
		want int
	}{
		{"one payload with max-payloads external payloads is 413", ext("externalPayloads", codecserver.DefaultMaxPayloads), 413},
		{"the proto field name counts too", ext("external_payloads", codecserver.DefaultMaxPayloads), 413},
		{"one payload with a few external payloads decodes", ext("externalPayloads", 3), 200},
	} {
		if status, _ := rawDo(t, url+"/decode", tt.body, jsonCT); status != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, status, tt.want)
		}
	}
}

// TestManySmallCompressedPayloadsDecode: a history of 400 small zlib
// payloads (a 45 KB body) decodes. Before, each decompression reserved 64
// KiB until the request ended, and the request got 503 every time.
func TestManySmallCompressedPayloadsDecode(t *testing.T) {
	t.Parallel()
	srv, url := newMemServer(t, zlibChain(0, nil))
	zc := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true})
	ps, err := zc.Encode(plainPayloads(400, 40))
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, ps)
	if status, _ := rawDo(t, url+"/decode", b, jsonCT); status != 200 {
		t.Errorf("400 small zlib payloads (%d-byte body): status %d, want 200", len(b), status)
	}
	waitInflight(t, srv, 0)
}

// TestOnePayloadAtTheDecompressionLimitDecodesWhenIdle: with the binary's
// defaults (DefaultMaxDecompressedBytes, DefaultMaxInFlightBodyBytes), a
// payload that decompresses to the limit decodes on an idle server;
// over the limit it is 422 (never 503: retrying cannot help). Before, any
// payload decompressing to more than 16 MiB got 503 forever, and the 503
// said to retry.
func TestOnePayloadAtTheDecompressionLimitDecodesWhenIdle(t *testing.T) {
	t.Parallel()
	const limit = codecserver.DefaultMaxDecompressedBytes
	srv, url := newMemServer(t, zlibChain(limit, nil))
	zc := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true})
	for _, tt := range []struct {
		name string
		data int
		want int
	}{
		// The limit counts the payload's metadata entry (ObjectCost) too.
		{"at the limit", limit - 256, 200},
		{"over the limit", limit + 1, 422},
	} {
		ps, err := zc.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: make([]byte, tt.data)}})
		if err != nil {
			t.Fatal(err)
		}
		status, h := rawDo(t, url+"/decode", body(t, ps), jsonCT)
		if status != tt.want || h.Get("Retry-After") != "" {
			t.Errorf("%s: a payload decompressing to %d bytes: status %d, Retry-After %q; want %d and none", tt.name, tt.data, status, h.Get("Retry-After"), tt.want)
		}
		waitInflight(t, srv, 0)
	}
}

// slowBodyFrom opens a connection from local address from (a loopback
// address: a client identity without authentication) and sends a /decode
// request declaring contentLength bytes and sending only the first sent.
// The connection stays open until the test ends.
func slowBodyFrom(t *testing.T, url, from string, contentLength, sent int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{%s", contentLength, strings.Repeat(" ", sent-1))
	return c
}

// doFrom posts body to /decode from local address from.
func doFrom(t *testing.T, url, from string, b []byte) (int, http.Header) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}}
	defer client.CloseIdleConnections()
	resp, err := client.Post(url+"/decode", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestOneIdentityCannotTakeTheWholeBudget: without authentication the
// client address is the identity. Slow bodies of one address take at most
// 3/4 of the in-flight budget (its next request gets 503), and another
// address is still served. Before, one client's slow bodies took it all
// and every other client got 503.
func TestOneIdentityCannotTakeTheWholeBudget(t *testing.T) {
	t.Parallel()
	const budget = 256 << 10
	srv, url := newMemServer(t, func(c *codecserver.Config) {
		c.MaxBodyBytes = budget
		c.MaxInFlightBodyBytes = budget
	})
	small := body(t, plainPayloads(1, 8))
	for i := range 4 {
		slowBodyFrom(t, url, "127.0.0.1", budget, 60<<10) // 64 KiB of buffer each
		if i < 3 {
			waitInflight(t, srv, int64(i+1)*64<<10)
		}
	}
	waitInflight(t, srv, 3*64<<10) // the fourth was refused: 3/4 is the share
	if status, h := doFrom(t, url, "127.0.0.1", small); status != 503 || h.Get("Retry-After") != "1" {
		t.Errorf("the identity holding its share: status %d, Retry-After %q; want 503 and 1", status, h.Get("Retry-After"))
	}
	if status, _ := doFrom(t, url, "127.0.0.2", small); status != 200 {
		t.Errorf("another identity: status %d, want 200", status)
	}
}

// TestInFlightBodyBudget: while slow bodies of two identities hold the
// whole budget, a third gets 503 with Retry-After; once they go, it is
// served.
func TestInFlightBodyBudget(t *testing.T) {
	t.Parallel()
	const budget = 256 << 10
	srv, url := newMemServer(t, func(c *codecserver.Config) {
		c.MaxBodyBytes = budget
		c.MaxInFlightBodyBytes = budget
	})
	var conns []net.Conn
	for i, from := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2"} {
		conns = append(conns, slowBodyFrom(t, url, from, budget, 60<<10)) // 64 KiB of buffer each
		waitInflight(t, srv, int64(i+1)*64<<10)
	}
	small := body(t, plainPayloads(1, 8))
	if status, h := doFrom(t, url, "127.0.0.3", small); status != 503 || h.Get("Retry-After") != "1" {
		t.Fatalf("with the budget full: status %d, Retry-After %q; want 503 and 1", status, h.Get("Retry-After"))
	}
	for _, c := range conns {
		c.Close()
	}
	waitInflight(t, srv, 0)
	if status, _ := doFrom(t, url, "127.0.0.3", small); status != 200 {
		t.Fatalf("after the slow requests left: status %d, want 200", status)
	}
}

// TestCompressedPayloadIsBusyOnlyWhenTheServerIs: a compressed payload
// that decodes on an idle server gets 503 with Retry-After while other
// identities hold the budget, and decodes again once they leave.
func TestCompressedPayloadIsBusyOnlyWhenTheServerIs(t *testing.T) {
	t.Parallel()
	const budget = 1 << 20
	srv, url := newMemServer(t, zlibChain(0, func(c *codecserver.Config) {
		c.MaxBodyBytes = 256 << 10
		c.MaxInFlightBodyBytes = budget
	}))
	zc := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true})
	ps, err := zc.Encode(plainPayloads(1, 256<<10))
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, ps)
	if status, _ := doFrom(t, url, "127.0.0.3", b); status != 200 {
		t.Fatalf("idle: status %d, want 200", status)
	}
	waitInflight(t, srv, 0)
	var conns []net.Conn
	for i := range 16 { // 12 x 64 KiB: the first address's share; 4 more of another
		from := "127.0.0.1"
		if i >= 12 {
			from = "127.0.0.2"
		}
		conns = append(conns, slowBodyFrom(t, url, from, 256<<10, 60<<10))
		waitInflight(t, srv, int64(i+1)*64<<10)
	}
	if status, h := doFrom(t, url, "127.0.0.3", b); status != 503 || h.Get("Retry-After") != "1" {
		t.Errorf("busy: status %d, Retry-After %q; want 503 and 1", status, h.Get("Retry-After"))
	}
	for _, c := range conns {
		c.Close()
	}
	waitInflight(t, srv, 0)
	if status, _ := doFrom(t, url, "127.0.0.3", b); status != 200 {
		t.Errorf("idle again: status %d, want 200", status)
	}
}

// TestAnswersWithEscapedMetadataKeysAreReserved: an answer whose metadata
// keys need JSON escaping is written by protojson rather than the fast
// writer; it is reserved from the in-flight budget all the same. Before,
// that path skipped the reservation: a 200 KiB pass-through payload with
// a key "é" was answered (200) where the same payload without it got 413.
func TestAnswersWithEscapedMetadataKeysAreReserved(t *testing.T) {
	t.Parallel()
	_, url := newMemServer(t, func(c *codecserver.Config) {
		c.MaxBodyBytes = 512 << 10
		c.MaxInFlightBodyBytes = 512 << 10
	})
	for _, key := range []string{"plain", "\u00e9"} {
		p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain"), key: []byte("a")}, Data: make([]byte, 150<<10)}
		status, _ := rawDo(t, url+"/decode", body(t, []*commonpb.Payload{p}), jsonCT)
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("metadata key %q: status %d, want 413: the answer does not fit one request's share of the budget", key, status)
		}
	}
}
