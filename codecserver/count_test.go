package codecserver

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// refTooManyPayloads is tooManyPayloads written with encoding/json's
// streaming Decoder (one element at a time in a reused json.RawMessage):
// the reference the fast scanner is checked against.
func refTooManyPayloads(body []byte, limit int) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	var raw json.RawMessage
	n := 0
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false
		}
		if key != "payloads" {
			if err := dec.Decode(&raw); err != nil {
				return false
			}
			continue
		}
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if tok != json.Delim('[') {
			if _, ok := tok.(json.Delim); ok {
				return false
			}
			continue
		}
		for dec.More() {
			if n++; n > limit {
				return true
			}
			if err := dec.Decode(&raw); err != nil {
				return false
			}
		}
		if _, err := dec.Token(); err != nil {
			return false
		}
	}
	return false
}

var countSeeds = []string{
	`{"payloads":[{},{},{}]}`,
	`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IngiCg=="},{"data":"a\\\"]}"}]}`,
	`{"a":"\"[","payloads":[1,"x",[1,[2]],{"payloads":[1,2,3]},null,true,-1.5e3]}`,
	`{"payl\u006fads":[{},{},{}]}`,
	` { "payloads" : [ { } , { } ] , "payloads" : [ { } ] } `,
	`{"payloads":[]}`, `{}`, `[]`, `{"payloads":null}`, `{"payloads":{"a":[1,2,3]}}`,
}

func FuzzTooManyPayloads(f *testing.F) {
	for _, s := range countSeeds {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, body []byte, limit uint8) {
		got := tooManyPayloads(body, int(limit%8))
		if json.Valid(body) {
			if want := refTooManyPayloads(body, int(limit%8)); got != want {
				t.Fatalf("tooManyPayloads(%q, %d) = %v, encoding/json says %v", body, limit%8, got, want)
			}
		}
	})
}

func TestTooManyPayloads(t *testing.T) {
	t.Parallel()
	elems := func(n int, e string) string { return strings.TrimSuffix(strings.Repeat(e+",", n), ",") }
	tests := []struct {
		name  string
		body  string
		limit int
		want  bool
	}{
		{"at the limit", `{"payloads":[` + elems(5, `{}`) + `]}`, 5, false},
		{"one past the limit", `{"payloads":[` + elems(6, `{}`) + `]}`, 5, true},
		{"whitespace", "{ \"payloads\" :\n[ " + elems(6, "{ }") + " ] }", 5, true},
		{"real payloads", `{"payloads":[` + elems(6, `{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IngiCg=="}`) + `]}`, 5, true},
		{"nested arrays are one element each", `{"payloads":[` + elems(5, `{"x":[[],[],[],[]]}`) + `]}`, 5, false},
		{"payloads keys inside payloads do not count", `{"payloads":[{"payloads":[` + elems(20, `{}`) + `]}]}`, 5, false},
		{"arrays under other keys do not count", `{"other":[` + elems(20, `{}`) + `],"payloads":[{}]}`, 5, false},
		{"a later payloads key after other keys", `{"a":{"b":[1,2,3]},"c":"d","payloads":[` + elems(6, `{}`) + `]}`, 5, true},
		{"duplicate payloads keys add up", `{"payloads":[` + elems(3, `{}`) + `],"payloads":[` + elems(3, `{}`) + `]}`, 5, true},
		{"refused before the rest is read", `{"payloads":[` + elems(6, `{}`) + `,garbage`, 5, true},
		{"malformed before the limit is left to protojson", `{"payloads":[{},{},garbage` + strings.Repeat(" ", 40), 5, false},
		{"not an object", `[` + elems(20, `{}`) + `]`, 5, false},
		{"payloads not an array", `{"payloads":{"a":[` + elems(20, `{}`) + `]}}`, 5, false},
		{"payloads null", `{"payloads":null,"x":[` + elems(20, `{}`) + `]}`, 5, false},
		{"huge numbers do not stop the count", `{"n":1e999,"payloads":[` + elems(6, `1e999`) + `]}`, 5, true},
		{"too short to hold more", `{"payloads":[{}]}`, 10, false},
		{"escaped quotes and brackets in strings", `{"payloads":[` + elems(5, `{"data":"\\\"]},{"}`) + `]}`, 5, false},
		{"escaped quotes and brackets in strings, over", `{"payloads":[` + elems(6, `{"data":"\\\"]},{"}`) + `]}`, 5, true},
		{"an escaped key", `{"payl\u006fads":[` + elems(6, `{}`) + `]}`, 5, true},
		{"a key only like payloads", `{"payloads2":[` + elems(6, `{}`) + `],"Payloads":[` + elems(6, `{}`) + `]}`, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tooManyPayloads([]byte(tt.body), tt.limit); got != tt.want {
				t.Errorf("tooManyPayloads(%.80q, %d) = %v, want %v", tt.body, tt.limit, got, tt.want)
			}
			if json.Valid([]byte(tt.body)) {
				if ref := refTooManyPayloads([]byte(tt.body), tt.limit); ref != tt.want {
					t.Errorf("encoding/json reference on %.80q: %v, want %v", tt.body, ref, tt.want)
				}
			}
		})
	}
}
