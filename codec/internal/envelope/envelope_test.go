package envelope_test

import (
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
