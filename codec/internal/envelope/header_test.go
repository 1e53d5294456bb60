package envelope_test

import (
	"bytes"
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec/internal/envelope"
)

func TestParseHeaderVersions(t *testing.T) {
	t.Parallel()
	data := make([]byte, envelope.Overhead)
	v2 := &commonpb.Payload{Metadata: envelope.NewMetadataV2("payments", "k", []byte("w")).Map(), Data: data}
	h, err := envelope.ParseHeader(v2)
	if err != nil || h.Version != 2 || string(h.Namespace) != "payments" {
		t.Fatalf("v2: %+v, %v", h, err)
	}
	if !bytes.Equal(h.AAD(), envelope.AADv2("payments", "k", []byte("w"))) {
		t.Error("v2 header's AAD is not AADv2")
	}
	v1 := &commonpb.Payload{Metadata: envelope.NewMetadata("k", []byte("w")).Map(), Data: data}
	h1, err := envelope.ParseHeader(v1)
	if err != nil || h1.Version != 1 || h1.Namespace != nil {
		t.Fatalf("v1: %+v, %v", h1, err)
	}
	if !bytes.Equal(h1.AAD(), envelope.AAD("k", []byte("w"))) {
		t.Error("v1 header's AAD is not AAD")
	}
	if h.Same(h1) {
		t.Error("a v1 and a v2 header with the same key are Same")
	}
	// The namespace is length-prefixed: moving bytes between it and the
	// key ID changes the AAD.
	if bytes.Equal(envelope.AADv2("ab", "c", nil), envelope.AADv2("a", "bc", nil)) {
		t.Error("AADv2 is ambiguous")
	}
}

// FuzzParseHeader: an accepted header re-encodes to the metadata it was
// parsed from; a refused one fails with our errors.
func FuzzParseHeader(f *testing.F) {
	f.Add("envelope/v2", "payments", true, "local/k", []byte("wrapped"), 28)
	f.Add("envelope/v1", "", false, "local/k", []byte("wrapped"), 40)
	f.Add("envelope/v2", "", true, "k", []byte{}, 3)
	f.Fuzz(func(t *testing.T, format, ns string, hasNS bool, keyID string, wrapped []byte, dataLen int) {
		if dataLen < 0 || dataLen > 1<<12 {
			return
		}
		md := map[string][]byte{
			envelope.MetadataEncoding:   []byte(envelope.EncodingEncrypted),
			envelope.MetadataFormat:     []byte(format),
			envelope.MetadataKeyID:      []byte(keyID),
			envelope.MetadataWrappedKey: wrapped,
		}
		if hasNS {
			md[envelope.MetadataNamespace] = []byte(ns)
		}
		p := &commonpb.Payload{Metadata: md, Data: make([]byte, dataLen)}
		h, err := envelope.ParseHeader(p)
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) && !errors.Is(err, envelope.ErrUnsupported) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		var again map[string][]byte
		switch h.Version {
		case 1:
			again = envelope.NewMetadata(string(h.KeyID), h.Wrapped).Map()
		case 2:
			again = envelope.NewMetadataV2(string(h.Namespace), string(h.KeyID), h.Wrapped).Map()
		default:
			t.Fatalf("version %d", h.Version)
		}
		if len(again) != len(md) {
			t.Fatalf("re-encoded %d entries, parsed %d", len(again), len(md))
		}
		for k, v := range md {
			if !bytes.Equal(again[k], v) {
				t.Fatalf("%s re-encodes as %q, was %q", k, again[k], v)
			}
		}
	})
}
