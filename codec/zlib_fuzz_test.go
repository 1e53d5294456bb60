package codec_test

import (
	"bytes"
	"compress/zlib"
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
)

// FuzzZlibDecode feeds arbitrary bytes as the data of a binary/zlib
// payload: decode either returns a payload that re-encodes to the
// decompressed bytes' payload, or fails with ErrMalformed; it never
// decompresses more than the limit.
func FuzzZlibDecode(f *testing.F) {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	inner, _ := proto.Marshal(&commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)})
	w.Write(inner)
	w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte("x\x9c"))
	z := codec.NewZlib(codec.ZlibOptions{MaxDecompressedBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/zlib")}, Data: data}
		out, err := z.Decode([]*commonpb.Payload{p})
		if err != nil {
			if !errors.Is(err, codec.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if proto.Size(out[0]) > 1<<16 {
			t.Fatalf("decoded %d bytes, more than the limit", proto.Size(out[0]))
		}
		// Accepted input round-trips through our encoder.
		enc, err := codec.NewZlib(codec.ZlibOptions{AlwaysEncode: true}).Encode(out)
		if err != nil {
			t.Fatal(err)
		}
		back, err := codec.NewZlib(codec.ZlibOptions{}).Decode(enc)
		if err != nil || !proto.Equal(back[0], out[0]) {
			t.Fatalf("re-encoded payload does not decode to itself: %v", err)
		}
	})
}
