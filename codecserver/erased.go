package codecserver

import (
	"context"
	"strconv"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// Erased payloads: a decode whose payloads include some sealed for a data
// subject whose key was shredded (codec.ErrErased) still answers 200, so
// that the Web UI and the CLI show the rest of the history. Each erased
// payload is replaced by a json/plain payload holding the string
// ErasedText, with no other metadata (the Temporal CLI prints a payload as
// its JSON value only when "encoding: json/plain" is its one metadata
// entry; with any other it prints base64), and the answer carries
// ErasedHeader with the number of erased payloads. The request's
// audit line has that number as "erased", and the server log gets a line
// "erased payloads". See docs/ERASURE.md.
const (
	// ErasedHeader counts the payloads of a decode answer that were
	// replaced because their data subject was erased.
	ErasedHeader = "X-Erased-Payloads"
	// ErasedText is the JSON string an erased payload is replaced with.
	ErasedText = "[erased: data subject key shredded]"
)

// erasedPayload is what an erased payload is shown as.
func erasedPayload() *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data:     []byte(strconv.Quote(ErasedText)),
	}
}

// erasableCodec is implemented by codecs that can tell erased payloads
// apart (codec.Codec.DecodeErasable).
type erasableCodec interface {
	DecodeErasable(ctx context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, []int, error)
}

// Decode decodes payloads through codecs as the server's /decode does:
// the first codec first, each given ctx when it takes one, and payloads an
// erasable codec reports erased replaced by a json/plain payload holding
// ErasedText and counted in erased. It is for programs that decode without
// HTTP (codec-server decode), so they and the server cannot disagree.
func Decode(ctx context.Context, codecs []converter.PayloadCodec, payloads []*commonpb.Payload) (out []*commonpb.Payload, erased int, err error) {
	return chain(codecs).decode(ctx, payloads)
}

// decode runs the chain's decoders in order for a person looking at a
// history: payloads an erasable codec reports erased are replaced by
// erasedPayload (json/plain, so the codecs after it pass it through) and
// counted instead of failing the request.
func (c chain) decode(ctx context.Context, payloads []*commonpb.Payload) (out []*commonpb.Payload, erased int, err error) {
	for _, pc := range c {
		var gone []int
		switch cc := pc.(type) {
		case erasableCodec:
			payloads, gone, err = cc.DecodeErasable(ctx, payloads)
		case contextCodec:
			payloads, err = cc.DecodeContext(ctx, payloads)
		default:
			payloads, err = pc.Decode(payloads)
		}
		if err != nil {
			return nil, 0, err
		}
		for _, i := range gone {
			payloads[i] = erasedPayload()
		}
		erased += len(gone)
	}
	return payloads, erased, nil
}
