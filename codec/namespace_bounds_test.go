package codec_test

import (
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestEncodeRefusesNamespaceDecodeWouldRefuse: decode refuses a v2 payload
// whose encryption-namespace is longer than 255 bytes (Temporal's limit),
// so encode must not seal one: it would be a payload nobody can open.
func TestEncodeRefusesNamespaceDecodeWouldRefuse(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", 256)
	if _, err := codec.New(keyringtest.New(), codec.Options{Namespace: long}); err == nil {
		t.Error("New accepted a 256-byte Namespace")
	}
	c := newCodec(t, keyringtest.New(), codec.Options{})
	sealed, err := c.ForNamespace(long).Encode([]*commonpb.Payload{jsonPayload("x")})
	if err == nil {
		_, derr := c.ForNamespace(long).Decode(sealed)
		t.Fatalf("Encode sealed for a 256-byte namespace (decode then says: %v)", derr)
	}
	// 255 bytes is fine both ways.
	ok := strings.Repeat("n", 255)
	sealed, err = c.ForNamespace(ok).Encode([]*commonpb.Payload{jsonPayload("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ForNamespace(ok).Decode(sealed); err != nil {
		t.Fatal(err)
	}
}
