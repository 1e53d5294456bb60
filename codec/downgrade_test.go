package codec_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
)

// TestVectorV2DowngradeToSamplesFormat: a v2 payload stripped of
// encryption-format (and its namespace) looks like a payload of the
// Temporal samples' static-key codec. It must not open: legacy keys are
// looked up by the payload's key ID, which for envelope payloads names a
// key-encryption key, never a legacy key. With RequireEncryption on it is
// still refused, not passed through.
func TestVectorV2DowngradeToSamplesFormat(t *testing.T) {
	v := readVectorV2(t)
	for _, ns := range []string{v.Namespace, "sandbox"} {
		p := v.sealed(t)
		delete(p.Metadata, "encryption-format")
		delete(p.Metadata, "encryption-namespace")
		out, err := vectorCodec(t, v).ForNamespace(ns).DecodeContext(context.Background(), []*commonpb.Payload{p})
		if out != nil || err == nil {
			t.Fatalf("decode in %s of a v2 payload relabelled as a samples payload: %v, %v; want an error", ns, out, err)
		}
		if !errors.Is(err, codec.ErrUnsupported) && !errors.Is(err, keyring.ErrUnknownKey) {
			t.Errorf("decode in %s: %v, want ErrUnsupported or ErrUnknownKey", ns, err)
		}
		if strings.Contains(err.Error(), "Lovelace") {
			t.Errorf("error leaks plaintext: %v", err)
		}
	}
}
