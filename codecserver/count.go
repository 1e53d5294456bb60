package codecserver

import (
	"bytes"
	"encoding/json"
)

// tooManyPayloads reports whether the top-level "payloads" array of body
// holds more than limit elements; see scanBody.
func tooManyPayloads(body []byte, limit int) bool {
	return scanBody(body, limit, -1) == scanTooManyPayloads
}

// scanVerdict is what scanBody found.
type scanVerdict int

const (
	scanOK scanVerdict = iota
	scanTooManyPayloads
	scanTooMuchMetadata
)

// scanBody reports whether the top-level "payloads" array of body holds
// more than maxPayloads elements, or its elements' "metadata" objects more
// than maxMetadata entries in all (maxMetadata < 0: not counted). It runs
// before protojson, which builds a message per payload and a map entry per
// metadata entry: a body of tiny payloads ({"payloads":[{},{},...]})
// costs ~3 bytes of body and well over 100 bytes of heap per payload, and
// an empty metadata entry ("":"",) 6 bytes of body and ~200 bytes of heap.
//
// It is a single forward pass over body that allocates nothing: it skips
// the values of other keys (strings with bytes.IndexByte, objects and
// arrays with a depth counter), walks each payload object's "metadata"
// object member by member, and stops at the first element or entry past a
// limit. On valid JSON it counts exactly what encoding/json's Decoder
// would (count_test.go checks it against one, by fuzzing too); the Decoder
// itself is too slow for the hot path (it would add ~70% to a 2,000-payload
// decode). Anything it cannot follow (malformed JSON, "payloads" not an
// array) is left to protojson, which refuses it with the usual 400; the
// count after protojson stays as the authoritative check of payloads.
func scanBody(body []byte, maxPayloads, maxMetadata int) scanVerdict {
	// n elements take at least 2n-1 bytes (a one-byte value and a comma
	// each) and n metadata entries at least 6n-1 ("":"" and a comma), so
	// a short body cannot hold more than the limits.
	short := int64(len(body)) < 2*int64(maxPayloads)+1
	if short && (maxMetadata < 0 || int64(len(body)) < 6*int64(maxMetadata)+5) {
		return scanOK
	}
	s := jsonScanner{b: body}
	if s.peek() != '{' {
		return scanOK
	}
	s.i++
	if s.peek() == '}' {
		return scanOK
	}
	n, meta := 0, 0
	for {
		if s.peek() != '"' {
			return scanOK
		}
		key, ok := s.str()
		if !ok || s.peek() != ':' {
			return scanOK
		}
		s.i++
		if keyIs(key, "payloads") && s.peek() == '[' {
			// Elements of every "payloads" key add up (protojson refuses a
			// duplicate key anyway).
			s.i++
			if s.peek() == ']' {
				s.i++
			} else {
				for {
					if n++; n > maxPayloads {
						return scanTooManyPayloads
					}
					if maxMetadata >= 0 && s.peek() == '{' {
						if !s.payload(&meta, maxMetadata) {
							return scanOK
						}
						if meta > maxMetadata {
							return scanTooMuchMetadata
						}
					} else if !s.skip() {
						return scanOK
					}
					c := s.peek()
					s.i++
					if c == ']' {
						break
					}
					if c != ',' {
						return scanOK
					}
				}
			}
		} else if !s.skip() {
			return scanOK
		}
		if s.peek() != ',' {
			return scanOK // '}' (done) or malformed
		}
		s.i++
	}
}

// payload walks one payload object (s.i at its '{'), adding the members of
// its "metadata" objects to *meta; it stops early once *meta passes max.
// It reports false where it cannot follow the JSON.
func (s *jsonScanner) payload(meta *int, max int) bool {
	s.i++ // '{'
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		key, ok := s.str()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if keyIs(key, "metadata") && s.peek() == '{' {
			s.i++
			if s.peek() == '}' {
				s.i++
			} else {
				for {
					if *meta++; *meta > max {
						return true
					}
					if s.peek() != '"' {
						return false
					}
					if _, ok := s.str(); !ok || s.peek() != ':' {
						return false
					}
					s.i++
					if !s.skip() {
						return false
					}
					c := s.peek()
					s.i++
					if c == '}' {
						break
					}
					if c != ',' {
						return false
					}
				}
			}
		} else if !s.skip() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// keyIs compares a raw (still escaped) JSON object key with name.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	var k string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	return json.Unmarshal(q, &k) == nil && k == name
}

// jsonScanner skips through JSON without decoding it. It follows valid
// JSON exactly; on invalid JSON it may stop anywhere.
type jsonScanner struct {
	b []byte
	i int
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (s *jsonScanner) peek() byte {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c
		}
	}
	return 0
}

// str skips the string at s.i (a '"') and returns its raw contents.
func (s *jsonScanner) str() ([]byte, bool) {
	start := s.i + 1
	j := start
	for {
		k := bytes.IndexByte(s.b[j:], '"')
		if k < 0 {
			return nil, false
		}
		j += k
		bs := 0 // an odd run of backslashes escapes the quote
		for p := j - 1; p >= start && s.b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			s.i = j + 1
			return s.b[start:j], true
		}
		j++
	}
}

// skip skips one value.
func (s *jsonScanner) skip() bool {
	switch c := s.peek(); c {
	case 0:
		return false
	case '"':
		_, ok := s.str()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, ok := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	case ',', ':', '}', ']':
		return false
	default: // a number, true, false or null
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return s.i > start
	}
}
