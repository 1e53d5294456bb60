package envelope_test

import (
	"bytes"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec/internal/envelope"
)

func TestUnmarshalPayloadMatchesProto(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    *commonpb.Payload
	}{
		{"empty", &commonpb.Payload{}},
		{"data only", &commonpb.Payload{Data: []byte("x")}},
		{"metadata and data", &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain"), "e": {}}, Data: []byte(`"v"`)}},
		{"external payloads (slow path)", &commonpb.Payload{Data: []byte("x"), ExternalPayloads: []*commonpb.Payload_ExternalPayloadDetails{{SizeBytes: 5}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := envelope.UnmarshalPayload(b)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.p) {
				t.Fatalf("got %v, want %v", got, tt.p)
			}
		})
	}
}

// TestSealedPlaintextIsStandardProtobuf checks that the marshalling fast
// path writes what proto.Unmarshal reads back as the same payload.
func TestSealedPlaintextIsStandardProtobuf(t *testing.T) {
	t.Parallel()
	for _, p := range []*commonpb.Payload{
		{},
		{Data: []byte("x")},
		{Metadata: map[string][]byte{"encoding": []byte("json/plain"), "empty": {}, "": []byte("v")}, Data: bytes.Repeat([]byte("y"), 300)},
		{Data: []byte("x"), ExternalPayloads: []*commonpb.Payload_ExternalPayloadDetails{{SizeBytes: 5}}},
	} {
		sealed, err := envelope.SealWithNonce(nullAEAD{}, nil, p, bytes.NewReader(make([]byte, 12)))
		if err != nil {
			t.Fatal(err)
		}
		var got commonpb.Payload
		if err := proto.Unmarshal(sealed[envelope.NonceSize:len(sealed)-envelope.TagSize], &got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, p) {
			t.Fatalf("got %v, want %v", &got, p)
		}
	}
}

// nullAEAD "seals" by appending a zero tag, so a test can read the
// marshalled plaintext. It is for tests of the layout only.
type nullAEAD struct{}

func (nullAEAD) NonceSize() int { return envelope.NonceSize }
func (nullAEAD) Overhead() int  { return envelope.TagSize }
func (nullAEAD) Seal(dst, nonce, pt, aad []byte) []byte {
	return append(append(dst, pt...), make([]byte, envelope.TagSize)...)
}
func (nullAEAD) Open(dst, nonce, ct, aad []byte) ([]byte, error) {
	return append(dst, ct[:len(ct)-envelope.TagSize]...), nil
}

// FuzzUnmarshalPayload checks that the aliasing fast path agrees with
// proto.Unmarshal on every input.
func FuzzUnmarshalPayload(f *testing.F) {
	for _, p := range []*commonpb.Payload{
		{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"v"`)},
		{Data: []byte("x"), ExternalPayloads: []*commonpb.Payload_ExternalPayloadDetails{{SizeBytes: 5}}},
	} {
		b, _ := proto.Marshal(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &commonpb.Payload{}
		wantErr := proto.Unmarshal(b, want)
		got, err := envelope.UnmarshalPayload(append([]byte(nil), b...))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("err = %v, proto.Unmarshal err = %v", err, wantErr)
		}
		if err == nil && !proto.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

// FuzzObjects checks that Objects counts at least the metadata entries
// and external payload details proto.Unmarshal makes (more only for
// duplicate metadata keys), and never more than two bytes each allow.
func FuzzObjects(f *testing.F) {
	for _, p := range []*commonpb.Payload{
		{Metadata: map[string][]byte{"encoding": []byte("json/plain"), "k": nil}, Data: []byte(`"v"`)},
		{Data: []byte("x"), ExternalPayloads: []*commonpb.Payload_ExternalPayloadDetails{{SizeBytes: 5}, {}}},
	} {
		b, _ := proto.Marshal(p)
		f.Add(b)
	}
	f.Add([]byte{0x1a, 0x00, 0x1a, 0x00, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := envelope.Objects(b)
		if n > len(b)/2 {
			t.Fatalf("Objects = %d for %d bytes", n, len(b))
		}
		p := &commonpb.Payload{}
		if proto.Unmarshal(b, p) != nil {
			return
		}
		if made := len(p.Metadata) + len(p.ExternalPayloads); n < made {
			t.Fatalf("Objects = %d, proto.Unmarshal made %d", n, made)
		}
	})
}

func TestObjectsCountsEmptyEntries(t *testing.T) {
	t.Parallel()
	bomb := bytes.Repeat([]byte{0x1a, 0x00}, 1000)
	if n := envelope.Objects(bomb); n != 1000 {
		t.Errorf("Objects of 1,000 empty external payload details = %d", n)
	}
}
