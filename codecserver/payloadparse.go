package codecserver

import (
	"bytes"
	"encoding/base64"

	commonpb "go.temporal.io/api/common/v1"
)

// unmarshalPayloads parses the common shape of a request body,
// {"payloads":[{"metadata":{"k":"<base64>",...},"data":"<base64>"},...]},
// without protojson's reflection: on the one-payload requests of the
// temporal CLI and on history pages protojson was the largest cost of the
// server. It handles a strict subset: ASCII keys and values without escape
// sequences, no null, no other fields, no duplicate keys. On anything
// else it reports ok false and the caller falls back to protojson, which
// then accepts or refuses the body as before. Whatever it accepts,
// protojson (with DiscardUnknown) accepts too and reads the same payloads;
// FuzzUnmarshalPayloads checks it.
func unmarshalPayloads(body []byte) (ps []*commonpb.Payload, ok bool) {
	s := jsonScanner{b: body}
	if s.peek() != '{' {
		return nil, false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil, s.atEnd()
	}
	key, ok := s.plainString()
	if !ok || key != "payloads" || s.peek() != ':' {
		return nil, false
	}
	s.i++
	if s.peek() != '[' {
		return nil, false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
	} else {
		for {
			p, ok := s.payloadObject()
			if !ok {
				return nil, false
			}
			ps = append(ps, p)
			c := s.peek()
			s.i++
			if c == ']' {
				break
			}
			if c != ',' {
				return nil, false
			}
		}
	}
	if s.peek() != '}' {
		return nil, false
	}
	s.i++
	return ps, s.atEnd()
}

// plainString reads a string at s.i that has no escapes, control or
// non-ASCII bytes (anything else: ok false).
func (s *jsonScanner) plainString() (string, bool) {
	b, ok := s.plainBytes()
	return string(b), ok
}

func (s *jsonScanner) plainBytes() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i + 1
	k := bytes.IndexByte(s.b[start:], '"')
	if k < 0 {
		return nil, false
	}
	raw := s.b[start : start+k]
	for _, c := range raw {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return nil, false
		}
	}
	s.i = start + k + 1
	return raw, true
}

// payloadObject reads one {"metadata":{...},"data":"..."} object.
func (s *jsonScanner) payloadObject() (*commonpb.Payload, bool) {
	if s.peek() != '{' {
		return nil, false
	}
	s.i++
	p := &commonpb.Payload{}
	if s.peek() == '}' {
		s.i++
		return p, true
	}
	seenMD, seenData := false, false
	for {
		key, ok := s.plainBytes()
		if !ok || s.peek() != ':' {
			return nil, false
		}
		s.i++
		switch string(key) {
		case "metadata":
			if seenMD || s.peek() != '{' {
				return nil, false
			}
			seenMD = true
			s.i++
			if s.peek() == '}' {
				s.i++
				break
			}
			p.Metadata = make(map[string][]byte, 4)
			for {
				k, ok := s.plainString()
				if !ok || s.peek() != ':' {
					return nil, false
				}
				s.i++
				if _, dup := p.Metadata[k]; dup {
					return nil, false
				}
				v, ok := s.base64Value()
				if !ok {
					return nil, false
				}
				p.Metadata[k] = v
				c := s.peek()
				s.i++
				if c == '}' {
					break
				}
				if c != ',' {
					return nil, false
				}
			}
		case "data":
			if seenData {
				return nil, false
			}
			seenData = true
			v, ok := s.base64Value()
			if !ok {
				return nil, false
			}
			p.Data = v
		default:
			return nil, false
		}
		c := s.peek()
		s.i++
		if c == '}' {
			return p, true
		}
		if c != ',' {
			return nil, false
		}
	}
}

// base64Value decodes a base64 string the way protojson does for bytes
// fields: URL alphabet if it has '-' or '_', unpadded if its length is not
// a multiple of 4.
func (s *jsonScanner) base64Value() ([]byte, bool) {
	raw, ok := s.plainBytes()
	if !ok {
		return nil, false
	}
	enc := base64.StdEncoding
	if bytes.ContainsAny(raw, "-_") {
		enc = base64.URLEncoding
	}
	if len(raw)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	out := make([]byte, enc.DecodedLen(len(raw)))
	n, err := enc.Decode(out, raw)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// atEnd reports whether only whitespace is left.
func (s *jsonScanner) atEnd() bool {
	s.peek()
	return s.i == len(s.b)
}
