package codecserver_test

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// zlibBomb returns a binary/zlib payload (the SDK's zlib codec, not
// sealed) that decompresses to n zero bytes of data.
func zlibBomb(t *testing.T, n int) *commonpb.Payload {
	t.Helper()
	big := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: make([]byte, n)}
	z, err := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{big})
	if err != nil {
		t.Fatal(err)
	}
	return z[0]
}

// TestDecompressionCountsAgainstTheInFlightBudget: what /decode
// decompresses is reserved from the in-flight budget like the body; a
// request that needs more than one identity's share of it (3/4) gets 413,
// not a 503 that invites retrying what can never succeed. Before,
// an 85 KiB body of zlib (no key needed with --zlib, the default) made the
// real binary hold ~245 MiB, three at once ~610 MiB, whatever the budget;
// a sealed compressed payload and an unsealed one in the same request even
// got 64 MiB each (one bound per codec of the chain).
func TestDecompressionCountsAgainstTheInFlightBudget(t *testing.T) {
	t.Parallel()
	const budget = 2 << 20
	kr := openKeyFile(t, keyringtest.SamplesKeyFile(t, "", "test"))
	cdc, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, url := newMemServer(t, func(c *codecserver.Config) {
		c.Codec = nil
		c.Codecs = []converter.PayloadCodec{cdc, codec.NewZlib(codec.ZlibOptions{DecodeOnly: true})}
		c.MaxBodyBytes = 1 << 20
		c.MaxInFlightBodyBytes = budget
	})
	ct := [][2]string{{"Content-Type", "application/json"}}
	plain := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: make([]byte, 8<<20)}
	for _, tt := range []struct {
		name string
		in   []*commonpb.Payload
	}{
		{"unsealed zlib", []*commonpb.Payload{zlibBomb(t, 8<<20)}},
		{"sealed zlib (the samples' format)", []*commonpb.Payload{keyringtest.SealLikeSamplesCompressed(t, keyringtest.SamplesKey, "", plain)}},
		{"sealed and unsealed, 1.5 MiB each", []*commonpb.Payload{
			keyringtest.SealLikeSamplesCompressed(t, keyringtest.SamplesKey, "", &commonpb.Payload{Metadata: plain.Metadata, Data: make([]byte, 3<<19)}),
			zlibBomb(t, 3<<19),
		}},
	} {
		b := body(t, tt.in)
		if len(b) > 64<<10 {
			t.Fatalf("%s: body %d bytes, want a small one", tt.name, len(b))
		}
		status, h := rawDo(t, url+"/decode", b, ct)
		if status != 413 || h.Get("Retry-After") != "" {
			t.Errorf("%s: %d-byte body decompressing past the %d-byte budget: status %d, Retry-After %q; want 413 and none", tt.name, len(b), budget, status, h.Get("Retry-After"))
		}
		waitInflight(t, srv, 0) // every reservation released
	}
	// Below the budget it decodes, and gives the reservation back.
	if status, _ := rawDo(t, url+"/decode", body(t, []*commonpb.Payload{zlibBomb(t, 512<<10)}), ct); status != 200 {
		t.Errorf("512 KiB decompressed under a %d-byte budget: status %d, want 200", budget, status)
	}
	waitInflight(t, srv, 0)
}

// panicAfterCodec decodes nothing and panics: a codec later in the chain
// than one that decompressed.
type panicAfterCodec struct{}

func (panicAfterCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) { return ps, nil }
func (panicAfterCodec) Decode([]*commonpb.Payload) ([]*commonpb.Payload, error) {
	panic("codec bug")
}

// TestDecompressionReservationSurvivesAPanic: a codec that panics after
// another decompressed leaves no reservation behind (the server answers
// 500 and the budget is whole again).
func TestDecompressionReservationSurvivesAPanic(t *testing.T) {
	t.Parallel()
	srv, url := newMemServer(t, func(c *codecserver.Config) {
		c.Codecs = []converter.PayloadCodec{c.Codec, codec.NewZlib(codec.ZlibOptions{DecodeOnly: true}), panicAfterCodec{}}
		c.Codec = nil
	})
	status, _ := rawDo(t, url+"/decode", body(t, []*commonpb.Payload{zlibBomb(t, 1<<20)}), [][2]string{{"Content-Type", "application/json"}})
	if status != 500 {
		t.Fatalf("status %d, want 500", status)
	}
	waitInflight(t, srv, 0)
}
