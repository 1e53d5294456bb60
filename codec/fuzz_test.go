package codec_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codec/internal/envelope"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// FuzzDecode feeds arbitrary payloads (as protobuf bytes) to Decode. A
// payload that is not sealed must come back untouched; a sealed one must
// either decode to a payload that re-encodes and decodes to itself, or fail
// with one of the documented errors.
func FuzzDecode(f *testing.F) {
	kr := keyringtest.New()
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := c.Encode([]*commonpb.Payload{jsonPayload(`"seed"`), {}})
	if err != nil {
		f.Fatal(err)
	}
	// v2 payloads of this and of another namespace, a v1 payload.
	other, err := c.ForNamespace("payments").Encode([]*commonpb.Payload{jsonPayload(`"other"`)})
	if err != nil {
		f.Fatal(err)
	}
	seeds := append(append(sealed, other...), sealV1Fuzz(f, kr, jsonPayload(`"v1"`)), jsonPayload(`"plain"`))
	for _, p := range seeds {
		b, err := proto.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p commonpb.Payload
		if err := proto.Unmarshal(b, &p); err != nil {
			return
		}
		out, err := c.Decode([]*commonpb.Payload{&p})
		if err != nil {
			for _, want := range []error{codec.ErrMalformed, codec.ErrUnsupported, codec.ErrDecrypt, codec.ErrNamespace, keyring.ErrUnknownKey, keyring.ErrUnwrap} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("undocumented error: %v", err)
		}
		if string(p.Metadata["encoding"]) != "binary/encrypted" {
			if out[0] != &p {
				t.Fatal("a foreign payload was not passed through")
			}
			return
		}
		again, err := c.Encode(out)
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.Decode(again)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(back[0], out[0]) {
			t.Fatal("decoded payload does not round-trip")
		}
	})
}

// sealV1Fuzz seals p in the envelope/v1 format for a fuzz seed.
func sealV1Fuzz(f *testing.F, kr keyring.Keyring, p *commonpb.Payload) *commonpb.Payload {
	dk, err := kr.NewDataKey(context.Background(), "")
	if err != nil {
		f.Fatal(err)
	}
	block, _ := aes.NewCipher(dk.Key.UnsafeBytes())
	aead, _ := cipher.NewGCM(block)
	data, err := envelope.Seal(aead, envelope.AAD(dk.KeyID, dk.Wrapped), p)
	if err != nil {
		f.Fatal(err)
	}
	return &commonpb.Payload{Metadata: envelope.NewMetadata(dk.KeyID, dk.Wrapped).Map(), Data: data}
}
