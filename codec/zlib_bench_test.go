package codec_test

import (
	"bytes"
	"fmt"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// compressiblePayload is JSON-like data that zlib shrinks several times.
func compressiblePayload(size int) *commonpb.Payload {
	row := []byte(`{"customer":"Ada Lovelace","card":"4111 1111 1111 1111","status":"active"},`)
	data := bytes.Repeat(row, size/len(row)+1)[:size]
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: data}
}

// BenchmarkCompressRoundTrip encodes and decodes one compressible payload
// per operation with Options.Compress ("compress") beside the same codec
// without it ("plain"), so the ratio is the cost of compression; it
// reports the sealed size of each.
func BenchmarkCompressRoundTrip(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 256 << 10} {
		for _, mode := range []struct {
			name string
			opts codec.Options
		}{{"plain", codec.Options{}}, {"compress", codec.Options{Compress: true}}} {
			b.Run(fmt.Sprintf("size=%d/%s", size, mode.name), func(b *testing.B) {
				c, err := codec.New(keyringtest.New(), mode.opts)
				if err != nil {
					b.Fatal(err)
				}
				in := []*commonpb.Payload{compressiblePayload(size)}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var sealed int
				for b.Loop() {
					enc, err := c.Encode(in)
					if err != nil {
						b.Fatal(err)
					}
					sealed = len(enc[0].Data)
					if _, err := c.Decode(enc); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(sealed), "sealed-bytes")
			})
		}
	}
}
