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

// scanCounts is what a scan counted: the objects protojson would make.
type scanCounts struct {
	payloads, metadata, external int
}

// objects is how many messages and map entries parsing the body makes.
func (c scanCounts) objects() int64 {
	return int64(c.payloads) + int64(c.metadata) + int64(c.external)
}

// scanBody is scanCounts without the counts.
func scanBody(body []byte, maxPayloads, maxMetadata int) scanVerdict {
	v, _ := scanBodyCounts(body, maxPayloads, maxMetadata)
	return v
}

// scanBodyCounts reports whether the top-level "payloads" array of body
// holds more than maxPayloads elements (each element of a payload's
// "externalPayloads" array counting as one more), or its elements'
// "metadata" objects more than maxMetadata entries in all (maxMetadata <
// 0: neither metadata nor external payloads are counted), and what it
// counted. It runs before protojson, which builds a message per payload
// and per external payload detail and a map entry per metadata entry: a
// body of tiny payloads ({"payloads":[{},{},...]}) costs ~3 bytes of body
// and well over 100 bytes of heap per payload, an empty external payload
// detail ({},) 3 bytes and ~100 bytes, and an empty metadata entry
// ("":"",) 6 bytes and ~200 bytes of heap.
//
// It is a single forward pass over body that allocates nothing: it skips
// the values of other keys (strings with bytes.IndexByte, objects and
// arrays with a depth counter), walks each payload object's "metadata"
// object member by member and its "externalPayloads" array element by
// element, and stops at the first element or entry past a limit. On valid
// JSON it counts exactly what encoding/json's Decoder would (count_test.go
// checks it against one, by fuzzing too); the Decoder itself is too slow
// for the hot path (it would add ~70% to a 2,000-payload decode). Anything
// it cannot follow (malformed JSON, "payloads" not an array) is left to
// protojson, which refuses it with the usual 400 (the counts then cover
// what was followed); the count after protojson stays as the
// authoritative check of payloads.
func scanBodyCounts(body []byte, maxPayloads, maxMetadata int) (scanVerdict, scanCounts) {
	var c scanCounts
	s := jsonScanner{b: body}
	if s.peek() != '{' {
		return scanOK, c
	}
	s.i++
	if s.peek() == '}' {
		return scanOK, c
	}
	for {
		if s.peek() != '"' {
			return scanOK, c
		}
		key, ok := s.str()
		if !ok || s.peek() != ':' {
			return scanOK, c
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
					if c.payloads++; c.payloads+c.external > maxPayloads {
						return scanTooManyPayloads, c
					}
					if maxMetadata >= 0 && s.peek() == '{' {
						if !s.payload(&c, maxPayloads, maxMetadata) {
							return scanOK, c
						}
						if c.metadata > maxMetadata {
							return scanTooMuchMetadata, c
						}
						if c.payloads+c.external > maxPayloads {
							return scanTooManyPayloads, c
						}
					} else if !s.skip() {
						return scanOK, c
					}
					ch := s.peek()
					s.i++
					if ch == ']' {
						break
					}
					if ch != ',' {
						return scanOK, c
					}
				}
			}
		} else if !s.skip() {
			return scanOK, c
		}
		if s.peek() != ',' {
			return scanOK, c // '}' (done) or malformed
		}
		s.i++
	}
}

// payload walks one payload object (s.i at its '{'), adding the members of
// its "metadata" objects to c.metadata and the elements of its
// "externalPayloads" arrays (protojson also reads "external_payloads") to
// c.external; it stops early once a count passes its limit. It reports
// false where it cannot follow the JSON.
func (s *jsonScanner) payload(c *scanCounts, maxPayloads, maxMetadata int) bool {
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
		switch {
		case keyIs(key, "metadata") && s.peek() == '{':
			s.i++
			if s.peek() == '}' {
				s.i++
				break
			}
			for {
				if c.metadata++; c.metadata > maxMetadata {
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
				ch := s.peek()
				s.i++
				if ch == '}' {
					break
				}
				if ch != ',' {
					return false
				}
			}
		case (keyIs(key, "externalPayloads") || keyIs(key, "external_payloads")) && s.peek() == '[':
			s.i++
			if s.peek() == ']' {
				s.i++
				break
			}
			for {
				if c.external++; c.payloads+c.external > maxPayloads {
					return true
				}
				if !s.skip() {
					return false
				}
				ch := s.peek()
				s.i++
				if ch == ']' {
					break
				}
				if ch != ',' {
					return false
				}
			}
		default:
			if !s.skip() {
				return false
			}
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
