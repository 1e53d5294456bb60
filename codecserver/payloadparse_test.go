package codecserver

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var parseSeeds = []string{
	`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IngiCg=="}]}`,
	`{"payloads":[]}`, `{}`, ` { "payloads" : [ { } , { "data" : "" } ] } `,
	`{"payloads":[{"metadata":{"a":"","b":"YQ"},"data":"-_8"}]}`,
	`{"payloads":[{"metadata":{"a":"YQ=="},"metadata":{}}]}`,
	`{"payloads":[{"metadata":{"a":"YQ==","a":"Yg=="}}]}`,
	`{"payloads":[{"data":"YQ=="}],"x":1}`,
	`{"payloads":[{"data":"Y\u0051=="}]}`,
	`{"payloads":[{"data":"YQ=\n="}]}`,
	`{"payloads":null}`, `{"payloads":[null]}`, `{"payloads":[{"externalPayloads":[{"sizeBytes":"3"}]}]}`,
	`{"payloads":[{"data":"YQ=="}]} x`, `{"payloads":[{"data":"!!!!"}]}`, `{"payloads":[{"data":"YQ="}]}`,
}

// FuzzUnmarshalPayloads: whatever the fast parser accepts, protojson
// accepts and reads as the same payloads.
func FuzzUnmarshalPayloads(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ps, ok := unmarshalPayloads(body)
		if !ok {
			return
		}
		var want commonpb.Payloads
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &want); err != nil {
			t.Fatalf("fast parser accepted %q, protojson refuses it: %v", body, err)
		}
		if !proto.Equal(&want, &commonpb.Payloads{Payloads: ps}) {
			t.Fatalf("fast parser read %q as %v, protojson as %v", body, ps, want.Payloads)
		}
	})
}

func TestUnmarshalPayloads(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{parseSeeds[0], true},
		{`{"payloads":[]}`, true},
		{` { "payloads" : [ { } , { "data" : "" } ] } `, true},
		{`{"payloads":[{"metadata":{"a":"","b":"YQ"},"data":"-_8"}]}`, true},
		{`{"payloads":[{"metadata":{"a":"YQ==","a":"Yg=="}}]}`, false},     // duplicate key: protojson refuses
		{`{"payloads":[{"data":"YQ=="}],"x":1}`, false},                    // another field: protojson decides
		{`{"payloads":[{"data":"Y\u0051=="}]}`, false},                     // escapes: protojson decides
		{`{"payloads":[{"externalPayloads":[{"sizeBytes":"3"}]}]}`, false}, // other payload fields are kept by protojson
		{`{"payloads":[{"data":"YQ=="}]} x`, false},
		{`{"payloads":[{"data":"!!!!"}]}`, false},
	} {
		ps, ok := unmarshalPayloads([]byte(tt.body))
		if ok != tt.ok {
			t.Errorf("unmarshalPayloads(%s): ok %v, want %v", tt.body, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		var want commonpb.Payloads
		if err := protojson.Unmarshal([]byte(tt.body), &want); err != nil || !proto.Equal(&want, &commonpb.Payloads{Payloads: ps}) {
			t.Errorf("unmarshalPayloads(%s) = %v; protojson: %v, %v", tt.body, ps, want.Payloads, err)
		}
	}
}
