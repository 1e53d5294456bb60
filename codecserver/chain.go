package codecserver

import (
	"context"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// contextCodec is implemented by codecs whose calls take a context
// (codec.Codec, codec.Zlib): the server passes the request's, so a
// client that goes away cancels keyring calls.
type contextCodec interface {
	EncodeContext(ctx context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, error)
	DecodeContext(ctx context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, error)
}

// chain applies codecs as the SDK's NewCodecDataConverter and
// NewPayloadCodecHTTPHandler do: Encode runs the last codec first, Decode
// the first codec first.
type chain []converter.PayloadCodec

// forNamespace returns the chain with every codec that implements
// converter.PayloadCodecWithSerializationContext bound to namespace (the
// envelope codec chooses its keys by it).
func (c chain) forNamespace(namespace string) chain {
	out := make(chain, len(c))
	sc := converter.WorkflowSerializationContext{Namespace: namespace}
	for i, pc := range c {
		if w, ok := pc.(converter.PayloadCodecWithSerializationContext); ok {
			pc = w.WithSerializationContext(sc)
		}
		out[i] = pc
	}
	return out
}

func (c chain) encode(ctx context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	var err error
	for i := len(c) - 1; i >= 0; i-- {
		if cc, ok := c[i].(contextCodec); ok {
			payloads, err = cc.EncodeContext(ctx, payloads)
		} else {
			payloads, err = c[i].Encode(payloads)
		}
		if err != nil {
			return nil, err
		}
	}
	return payloads, nil
}
