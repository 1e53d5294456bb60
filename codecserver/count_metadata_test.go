package codecserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// refMetadataEntries counts, with encoding/json, the members of the
// "metadata" objects of the objects in every top-level "payloads" array:
// the reference scanBody's metadata count is checked against. ok is false
// where encoding/json cannot follow the body.
func refMetadataEntries(body []byte) (n int, ok bool) {
	var top []struct {
		key string
		raw json.RawMessage
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, false
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return 0, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, false
		}
		top = append(top, struct {
			key string
			raw json.RawMessage
		}{k.(string), raw})
	}
	for _, kv := range top {
		var elems []json.RawMessage
		if kv.key != "payloads" || json.Unmarshal(kv.raw, &elems) != nil {
			continue
		}
		for _, el := range elems {
			members, isObj := objectMembers(el)
			if !isObj {
				continue
			}
			for _, m := range members {
				if m.key != "metadata" {
					continue
				}
				if mm, isObj := objectMembers(m.raw); isObj {
					n += len(mm)
				}
			}
		}
	}
	return n, true
}

type member struct {
	key string
	raw json.RawMessage
}

// objectMembers lists the members of a JSON object, duplicates included.
func objectMembers(raw json.RawMessage) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, member{k.(string), v})
	}
	return out, true
}

var metadataSeeds = []string{
	`{"payloads":[{"metadata":{"a":"","b":"x"}},{"metadata":{"c":""}}]}`,
	`{"payloads":[{"metadata":{"a":"\"}","b":{"x":[1,{"y":2}]}},"data":"","metadata":{"c":""}}]}`,
	`{"payloads":[{"m\u0065tadata":{"a":"","b":""}},1,[{"metadata":{"z":""}}],null]}`,
	`{"x":{"payloads":[{"metadata":{"a":"","b":"","c":""}}]},"payloads":[{"metadata":null},{"metadata":[1,2]}]}`,
	` { "payloads" : [ { "metadata" : { "a" : "" , "b" : "" } } ] } `,
}

func FuzzScanBodyMetadata(f *testing.F) {
	for _, s := range append(metadataSeeds, countSeeds...) {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, limit uint8) {
		max := int(limit % 8)
		got := scanBody(body, 1<<30, max)
		if !json.Valid(body) {
			return
		}
		n, ok := refMetadataEntries(body)
		if !ok {
			return
		}
		if want := n > max; (got == scanTooMuchMetadata) != want {
			t.Fatalf("scanBody(%q, metadata limit %d) = %v; encoding/json counts %d entries", body, max, got, n)
		}
	})
}

func TestScanBodyMetadata(t *testing.T) {
	t.Parallel()
	for _, s := range metadataSeeds {
		n, ok := refMetadataEntries([]byte(s))
		if !ok {
			t.Fatalf("reference cannot read seed %s", s)
		}
		for max := 0; max <= n+1; max++ {
			got := scanBody([]byte(s), 1<<30, max) == scanTooMuchMetadata
			if got != (n > max) {
				t.Errorf("scanBody(%s, %d): too much = %v, reference counts %d", s, max, got, n)
			}
		}
	}
	// Big bodies: the shortcut for short bodies must not hide entries.
	var b strings.Builder
	b.WriteString(`{"payloads":[{"metadata":{`)
	for i := range 1000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%d":""`, i)
	}
	b.WriteString(`}}]}`)
	if scanBody([]byte(b.String()), 10, 999) != scanTooMuchMetadata {
		t.Error("1000 entries with a limit of 999 were not refused")
	}
	if scanBody([]byte(b.String()), 10, 1000) != scanOK {
		t.Error("1000 entries with a limit of 1000 were refused")
	}
	// The payload limit still wins first.
	if scanBody([]byte(`{"payloads":[{},{},{}]}`), 2, 0) != scanTooManyPayloads {
		t.Error("3 payloads with a limit of 2 were not refused")
	}
}

// refExternalEntries counts, with encoding/json, the elements of the
// "externalPayloads" (or "external_payloads") arrays of the objects in
// every top-level "payloads" array of a valid JSON body.
func refExternalEntries(body []byte) (n int) {
	top, _ := objectMembers(body)
	for _, kv := range top {
		var elems []json.RawMessage
		if kv.key != "payloads" || json.Unmarshal(kv.raw, &elems) != nil {
			continue
		}
		for _, el := range elems {
			members, _ := objectMembers(el)
			for _, m := range members {
				var ext []json.RawMessage
				if (m.key == "externalPayloads" || m.key == "external_payloads") && json.Unmarshal(m.raw, &ext) == nil {
					n += len(ext)
				}
			}
		}
	}
	return n
}

// FuzzScanBodyExternal checks the scanner's count of external payload
// details against encoding/json on valid JSON.
func FuzzScanBodyExternal(f *testing.F) {
	for _, s := range append(append(metadataSeeds, countSeeds...),
		`{"payloads":[{"externalPayloads":[{},{"sizeBytes":"5"}]},{"external_payloads":[{}],"metadata":{"a":""}}]}`,
		`{"payloads":[{"ext\u0065rnalPayloads":[{},{}],"data":""},{"externalPayloads":[]},{"externalPayloads":null}]}`,
	) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		_, got := scanBodyCounts(body, 1<<30, 1<<30)
		if want := refExternalEntries(body); got.external != want {
			t.Fatalf("scanBodyCounts(%q) counts %d external payloads; encoding/json %d", body, got.external, want)
		}
	})
}
