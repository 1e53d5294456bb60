package codec

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec/internal/envelope"
)

// EncodingZlib is the encoding of a payload compressed by the SDK's
// converter.NewZlibCodec: data is the zlib stream of the original payload
// marshalled with protobuf. Compressed envelope payloads use the same form
// inside the ciphertext (see docs/FORMAT.md, "Compression").
const EncodingZlib = "binary/zlib"

// Defaults for compression ([Options] and [ZlibOptions]).
const (
	// DefaultCompressThreshold is the smallest marshalled payload
	// Options.Compress compresses: below it zlib's header and checksum
	// mostly cost more than they save.
	DefaultCompressThreshold = 256
	// DefaultMaxDecompressedBytes bounds what one Decode call may
	// decompress, all payloads together: 64 MiB, well above a Temporal
	// history page, far below what a decompression bomb asks for.
	DefaultMaxDecompressedBytes = 64 << 20
)

// errInflateLimit is what a decompression past the budget fails with.
var errInflateLimit = errors.New("decompressed size exceeds the limit")

// What unmarshalling costs. Decode charges the objects a payload's bytes
// become against the same budgets as the bytes, before it unmarshals
// them: two bytes of protobuf (an empty metadata entry or external
// payload detail) become ~60-100 bytes of heap, so 4 MiB decompressed
// would otherwise become a quarter of a gigabyte.
const (
	// ObjectCost is what Decode charges for each metadata entry and
	// external payload detail it unmarshals: a measured upper bound of
	// their heap, map and slice growth included.
	ObjectCost = 128
	// FreeObjects is how many objects of each sealed payload are not
	// charged: the request that carried the payload paid for its bytes,
	// and a real payload has 1 to 5 metadata entries. Objects of
	// decompressed payloads are all charged.
	FreeObjects = 8
)

// budget is the number of bytes one Decode call may still decompress. It
// is shared by the goroutines of a parallel decode. take, when set, comes
// from WithDecompressionBudget.
type budget struct {
	left  atomic.Int64
	take  func(n int64) error
	count func(n int) error // from WithObjectCount
}

func newBudget(ctx context.Context, n int64) *budget {
	b := &budget{}
	b.left.Store(n)
	b.take, _ = ctx.Value(decompressionKey{}).(func(int64) error)
	b.count = objectCounter(ctx)
	return b
}

type decompressionKey struct{}

type objectCountKey struct{}

// WithObjectCount returns a context under which the DecodeContext calls of
// every [Codec] and [Zlib] tell count, before they unmarshal a decrypted
// or decompressed payload, how many metadata entries and external payload
// details it holds: callers that bound the entries of a request (the
// codec server's --max-metadata-entries) see those inside sealed payloads
// too. An error from count fails the decode with that error wrapped.
// count must be safe for concurrent use.
func WithObjectCount(ctx context.Context, count func(n int) error) context.Context {
	return context.WithValue(ctx, objectCountKey{}, count)
}

func objectCounter(ctx context.Context) func(int) error {
	f, _ := ctx.Value(objectCountKey{}).(func(int) error)
	return f
}

// charge takes n bytes of the budget for objects about to be unmarshalled
// (see [ObjectCost]): past MaxDecompressedBytes it fails with ErrMalformed,
// and an error from take is returned as it is.
func (b *budget) charge(n int64) error {
	if n <= 0 {
		return nil
	}
	if b.left.Add(-n) < 0 {
		return fmt.Errorf("%w: the objects it unmarshals into: %w", ErrMalformed, errInflateLimit)
	}
	if b.take != nil {
		return b.take(n)
	}
	return nil
}

// WithDecompressionBudget returns a context under which the DecodeContext
// calls of every [Codec] and [Zlib] ask take for the memory they
// decompress into, in blocks, before allocating it, and for the objects
// ([ObjectCost] each) decompressed or decrypted payloads unmarshal into,
// on top of their own MaxDecompressedBytes, which counts both. An error
// from take fails the decode with that error wrapped. take must be safe
// for concurrent use. The codec server
// passes its in-flight memory budget: without it a request of a few
// kilobytes of zlib could make it hold 64 MiB per codec of the chain.
func WithDecompressionBudget(ctx context.Context, take func(n int64) error) context.Context {
	return context.WithValue(ctx, decompressionKey{}, take)
}

// zpools reuses zlib writers and readers: a new zlib writer allocates
// some 800 KB of compressor state, far more than a typical payload. Each
// Codec and Zlib has its own (no package-level state).
type zpools struct {
	w, r sync.Pool
}

// deflate returns p compressed in the SDK's binary/zlib form, and whether
// that is smaller than p marshalled.
func (zp *zpools) deflate(p *commonpb.Payload) (*commonpb.Payload, bool, error) {
	raw, err := proto.Marshal(p)
	if err != nil {
		return nil, false, fmt.Errorf("marshal payload: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(len(raw)/2 + 64)
	w, _ := zp.w.Get().(*zlib.Writer)
	if w == nil {
		w = zlib.NewWriter(&buf)
	} else {
		w.Reset(&buf)
	}
	defer zp.w.Put(w)
	if _, err := w.Write(raw); err != nil {
		return nil, false, fmt.Errorf("compress payload: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, false, fmt.Errorf("compress payload: %w", err)
	}
	z := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(EncodingZlib)}, Data: buf.Bytes()}
	return z, buf.Len() < len(raw), nil
}

// isZlib reports whether p is a binary/zlib payload.
func isZlib(p *commonpb.Payload) bool {
	return p != nil && string(p.GetMetadata()["encoding"]) == EncodingZlib
}

// inflate decompresses a binary/zlib payload, taking at most what is left
// of b. Corrupt data and data past the budget fail with ErrMalformed; the
// error never quotes the data.
func (zp *zpools) inflate(p *commonpb.Payload, b *budget) (*commonpb.Payload, error) {
	var r io.ReadCloser
	var err error
	if pooled, ok := zp.r.Get().(io.ReadCloser); ok {
		if err = pooled.(zlib.Resetter).Reset(bytes.NewReader(p.GetData()), nil); err == nil {
			r = pooled
		}
	} else {
		r, err = zlib.NewReader(bytes.NewReader(p.GetData()))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: binary/zlib payload: not a zlib stream", ErrMalformed)
	}
	defer func() { r.Close(); zp.r.Put(r) }()
	limit := b.left.Load()
	if limit < 0 {
		limit = 0
	}
	raw, takeErr, err := readInflated(r, limit, len(p.GetData()), b.take)
	if takeErr != nil {
		return nil, fmt.Errorf("binary/zlib payload: %w", takeErr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: binary/zlib payload: corrupt zlib stream", ErrMalformed)
	}
	if int64(len(raw)) > limit || b.left.Add(-int64(len(raw))) < 0 {
		return nil, fmt.Errorf("%w: binary/zlib payload: %w", ErrMalformed, errInflateLimit)
	}
	// Counted and charged before they exist; the payload's bytes alias
	// raw, which is already reserved.
	n := envelope.Objects(raw)
	if b.count != nil {
		if err := b.count(n); err != nil {
			return nil, fmt.Errorf("binary/zlib payload: %w", err)
		}
	}
	if err := b.charge(int64(n) * ObjectCost); err != nil {
		return nil, fmt.Errorf("binary/zlib payload: %w", err)
	}
	out, err := envelope.UnmarshalPayload(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: binary/zlib payload: decompressed bytes are not a payload", ErrMalformed)
	}
	return out, nil
}

// inflateBlock is the largest first buffer of a decompression;
// minInflateBlock the smallest.
const (
	inflateBlock    = 64 << 10
	minInflateBlock = 1 << 10
)

// readInflated reads at most limit+1 bytes of r into a buffer that doubles
// as bytes arrive, asking take (when set) for each growth before making
// it. The first buffer is four times the compressed size (compressed
// bytes, between minInflateBlock and inflateBlock): many small payloads
// reserve little. takeErr is take's refusal, err a read error.
func readInflated(r io.Reader, limit int64, compressed int, take func(int64) error) (buf []byte, takeErr, err error) {
	size := min(limit+1, min(max(4*int64(compressed), minInflateBlock), inflateBlock))
	if take != nil {
		if err := take(size); err != nil {
			return nil, err, nil
		}
	}
	buf = make([]byte, 0, size)
	for {
		var one []byte // a byte read before growing
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, nil, nil // past the limit: the caller refuses it
			}
			// A stream that ends exactly here must not double the
			// buffer (and its reservation) to read nothing.
			var probe [1]byte
			n, err := io.ReadFull(r, probe[:])
			if n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				return buf, nil, nil
			}
			if n == 0 {
				return nil, nil, err
			}
			one = probe[:n]
			next := min(2*int64(cap(buf)), limit+1)
			if take != nil {
				if err := take(next - int64(cap(buf))); err != nil {
					return nil, err, nil
				}
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = append(nb, one...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// ZlibOptions configures [NewZlib]. All fields are optional.
type ZlibOptions struct {
	// AlwaysEncode compresses every payload, as the Temporal samples do
	// (converter.ZlibCodecOptions.AlwaysEncode). Default: compress only
	// payloads that get smaller.
	AlwaysEncode bool
	// DecodeOnly makes Encode return payloads unchanged: the codec reads
	// compressed payloads and never writes them (the codec server's --zlib).
	// Default: Encode compresses.
	DecodeOnly bool
	// MaxDecompressedBytes bounds what one Decode call decompresses, all
	// payloads together, and the objects they unmarshal into
	// ([ObjectCost] each); more fails with ErrMalformed. Default:
	// DefaultMaxDecompressedBytes.
	MaxDecompressedBytes int64
}

// Zlib is a converter.PayloadCodec in the format of the SDK's
// converter.NewZlibCodec (encoding binary/zlib), whose Decode bounds the
// decompressed size, so a small payload cannot make it allocate gigabytes.
// Chain it after a [Codec] to read payloads of the Temporal samples'
// CompressAndEncryptDataConverter that were compressed but not sealed
// (sealed ones a Codec decompresses itself):
//
//	converter.NewCodecDataConverter(parent, c, codec.NewZlib(codec.ZlibOptions{}))
type Zlib struct {
	opts ZlibOptions
	zp   zpools
}

var _ converter.PayloadCodec = (*Zlib)(nil)

// NewZlib returns a Zlib codec.
func NewZlib(opts ZlibOptions) *Zlib {
	if opts.MaxDecompressedBytes <= 0 {
		opts.MaxDecompressedBytes = DefaultMaxDecompressedBytes
	}
	return &Zlib{opts: opts}
}

// Encode implements converter.PayloadCodec: it compresses each payload,
// keeping the original when compression does not make it smaller (unless
// AlwaysEncode), or returns them all unchanged with DecodeOnly. The input
// is not modified.
func (z *Zlib) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil || z.opts.DecodeOnly {
			out[i] = p
			continue
		}
		c, smaller, err := z.zp.deflate(p)
		if err != nil {
			return nil, fmt.Errorf("codec: zlib encode payload %d: %w", i, err)
		}
		if smaller || z.opts.AlwaysEncode {
			out[i] = c
		} else {
			out[i] = p
		}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec: it decompresses binary/zlib
// payloads and returns all others unchanged.
func (z *Zlib) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return z.DecodeContext(context.Background(), payloads)
}

// EncodeContext is Encode; ctx is unused (compression does not block).
func (z *Zlib) EncodeContext(_ context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return z.Encode(payloads)
}

// DecodeContext is Decode; ctx carries only a [WithDecompressionBudget].
func (z *Zlib) DecodeContext(ctx context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	b := newBudget(ctx, z.opts.MaxDecompressedBytes)
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !isZlib(p) {
			out[i] = p
			continue
		}
		d, err := z.zp.inflate(p, b)
		if err != nil {
			return nil, fmt.Errorf("codec: zlib decode payload %d: %w", i, err)
		}
		out[i] = d
	}
	return out, nil
}
