package codec_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
)

// TestWithDecompressionBudget: Zlib.DecodeContext asks the context's take
// for the memory it decompresses into before allocating it, and a refusal
// fails the decode with that error.
func TestWithDecompressionBudget(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	big := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: make([]byte, size)}
	z, err := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{big})
	if err != nil {
		t.Fatal(err)
	}
	zc := codec.NewZlib(codec.ZlibOptions{})

	var taken atomic.Int64
	ctx := codec.WithDecompressionBudget(context.Background(), func(n int64) error { taken.Add(n); return nil })
	if _, err := zc.DecodeContext(ctx, z); err != nil {
		t.Fatal(err)
	}
	if got := taken.Load(); got < size || got > 2*size+(64<<10) {
		t.Errorf("took %d bytes for a %d-byte decompression, want between %d and about twice that", got, size, size)
	}

	errFull := errors.New("budget full")
	var asked atomic.Int64
	ctx = codec.WithDecompressionBudget(context.Background(), func(n int64) error {
		if asked.Add(n) > 1<<20 {
			return errFull
		}
		return nil
	})
	if _, err := zc.DecodeContext(ctx, z); !errors.Is(err, errFull) {
		t.Errorf("decode past the context's budget: %v, want %v", err, errFull)
	}
	if got := asked.Load(); got > 2<<20 {
		t.Errorf("asked for %d bytes before the refusal stopped it, want at most 2 MiB", got)
	}
}
