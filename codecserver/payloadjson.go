package codecserver

import (
	"encoding/base64"
	"slices"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// marshalPayloads writes {"payloads":[...]} exactly as protojson would for
// payloads that only have metadata and data (every payload the codec
// returns), into one buffer sized up front: protojson's generic encoder
// spent half the allocations of a large decode answer. Payloads with other
// fields set fall back to protojson. reserve is asked for the answer's
// size (for protojson, an upper bound) before it is allocated; its error
// is returned as it is.
func marshalPayloads(ps []*commonpb.Payload, reserve func(int64) error) ([]byte, error) {
	size := len(`{"payloads":[]}`)
	for _, p := range ps {
		if p == nil || len(p.GetExternalPayloads()) > 0 || len(p.ProtoReflect().GetUnknown()) > 0 {
			// protojson writes each byte of the wire form as at most
			// ~4/3 base64, each field with its name: 4x bounds it.
			all := &commonpb.Payloads{Payloads: ps}
			if err := reserve(4*int64(proto.Size(all)) + 1024); err != nil {
				return nil, err
			}
			return protojson.Marshal(all)
		}
		size += len(`{"metadata":{},"data":""},`) + base64.StdEncoding.EncodedLen(len(p.Data))
		for k, v := range p.Metadata {
			if !plainJSONString(k) {
				// Escaping is protojson's: it escapes some characters
				// (and refuses invalid UTF-8) its own way. Its answer is
				// reserved like any other (4x the wire form bounds it).
				all := &commonpb.Payloads{Payloads: ps}
				if err := reserve(4*int64(proto.Size(all)) + 1024); err != nil {
					return nil, err
				}
				return protojson.Marshal(all)
			}
			size += len(k)*2 + 8 + base64.StdEncoding.EncodedLen(len(v))
		}
	}
	if err := reserve(int64(size)); err != nil {
		return nil, err
	}
	b := make([]byte, 0, size)
	b = append(b, `{"payloads":[`...)
	keys := make([]string, 0, 8)
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if len(p.Metadata) > 0 {
			b = append(b, `"metadata":{`...)
			keys = keys[:0]
			for k := range p.Metadata {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for j, k := range keys {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(append(append(b, '"'), k...), '"')
				b = append(b, `:"`...)
				b = base64.StdEncoding.AppendEncode(b, p.Metadata[k])
				b = append(b, '"')
			}
			b = append(b, '}')
		}
		if len(p.Data) > 0 {
			if len(p.Metadata) > 0 {
				b = append(b, ',')
			}
			b = append(b, `"data":"`...)
			b = base64.StdEncoding.AppendEncode(b, p.Data)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	return b, nil
}

// plainJSONString reports whether s is printable ASCII without quotes or
// backslashes: a JSON string as it is, whoever escapes it. Metadata keys
// are such in practice.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
