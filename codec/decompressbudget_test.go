package codec_test

import (
	"bytes"
	"compress/zlib"
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

// TestProtobufBombsAreChargedBeforeTheyUnmarshal: 1 MiB of empty external
// payload details (a few KB of zlib) would unmarshal into half a million
// objects (~50 MB). Zlib.Decode counts them (ObjectCost each) against
// MaxDecompressedBytes and asks the context's take for them before they
// exist: past the limit, or on a refusal, nothing is unmarshalled. Before,
// only the decompressed bytes were counted and the bomb decoded.
func TestProtobufBombsAreChargedBeforeTheyUnmarshal(t *testing.T) {
	t.Parallel()
	raw := make([]byte, 0, 2<<19)
	for range 1 << 19 {
		raw = append(raw, 0x1a, 0x00)
	}
	z := zlibPayload(t, raw)
	if _, err := codec.NewZlib(codec.ZlibOptions{}).Decode([]*commonpb.Payload{z}); !errors.Is(err, codec.ErrMalformed) {
		t.Errorf("default limit: err = %v, want ErrMalformed", err)
	}
	refused := errors.New("refused")
	var asked atomic.Int64
	ctx := codec.WithDecompressionBudget(context.Background(), func(n int64) error {
		if n >= (1<<19)*codec.ObjectCost {
			asked.Store(n)
			return refused
		}
		return nil
	})
	big := codec.NewZlib(codec.ZlibOptions{MaxDecompressedBytes: 1 << 30})
	if _, err := big.DecodeContext(ctx, []*commonpb.Payload{z}); !errors.Is(err, refused) {
		t.Errorf("a 1 GiB limit and a budget that refuses the objects: err = %v, want the budget's refusal", err)
	}
	if asked.Load() != (1<<19)*codec.ObjectCost {
		t.Errorf("the budget was asked %d bytes for the objects, want %d", asked.Load(), (1<<19)*codec.ObjectCost)
	}
}

// zlibPayload is a binary/zlib payload whose data inflates to raw.
func zlibPayload(t *testing.T, raw []byte) *commonpb.Payload {
	t.Helper()
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(raw)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(codec.EncodingZlib)}, Data: buf.Bytes()}
}

// TestWithObjectCount: DecodeContext tells the context's count how many
// metadata entries and external payload details each decompressed payload
// holds before unmarshalling it, and a refusal fails the decode.
func TestWithObjectCount(t *testing.T) {
	t.Parallel()
	inner := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain"), "a": nil, "b": nil}, Data: []byte("x")}
	z, err := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{inner})
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	ctx := codec.WithObjectCount(context.Background(), func(n int) error { got.Add(int64(n)); return nil })
	if _, err := codec.NewZlib(codec.ZlibOptions{}).DecodeContext(ctx, z); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 3 {
		t.Errorf("counted %d objects, want 3", got.Load())
	}
	refused := errors.New("refused")
	ctx = codec.WithObjectCount(context.Background(), func(int) error { return refused })
	if _, err := codec.NewZlib(codec.ZlibOptions{}).DecodeContext(ctx, z); !errors.Is(err, refused) {
		t.Errorf("err = %v, want the count's refusal", err)
	}
}
