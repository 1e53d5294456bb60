package codecserver

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func FuzzMarshalPayloads(f *testing.F) {
	f.Add("encoding", []byte("json/plain"), []byte(`{"a":1}`), "", []byte(nil))
	f.Add("k\"\\<é\x01", []byte{0, 1, 2}, []byte(nil), "x", []byte{})
	f.Fuzz(func(t *testing.T, k1 string, v1, data []byte, k2 string, v2 []byte) {
		p := &commonpb.Payload{Data: data, Metadata: map[string][]byte{}}
		if k1 != "" || v1 != nil {
			p.Metadata[k1] = v1
		}
		if k2 != "" {
			p.Metadata[k2] = v2
		}
		in := []*commonpb.Payload{p, {}, {Data: []byte("x")}}
		b, err := marshalPayloads(in, func(int64) error { return nil })
		if err != nil {
			if protojsonValidUTF8(k1) && protojsonValidUTF8(k2) {
				t.Fatal(err)
			}
			return
		}
		var out commonpb.Payloads
		if err := protojson.Unmarshal(b, &out); err != nil {
			if !protojsonValidUTF8(k1) || !protojsonValidUTF8(k2) {
				return // protojson itself refuses invalid UTF-8 keys
			}
			t.Fatalf("protojson cannot read %q: %v", b, err)
		}
		if len(out.Payloads) != len(in) {
			t.Fatalf("%d payloads, want %d", len(out.Payloads), len(in))
		}
		for i := range in {
			if !proto.Equal(out.Payloads[i], in[i]) {
				t.Fatalf("payload %d: got %v, want %v (json %s)", i, out.Payloads[i], in[i], b)
			}
		}
	})
}

func protojsonValidUTF8(s string) bool {
	_, err := protojson.Marshal(&commonpb.Payload{Metadata: map[string][]byte{s: nil}})
	return err == nil
}
