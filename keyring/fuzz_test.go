package keyring

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseKeyFile checks that the key file parser never panics, that an
// accepted file has a usable active key, and that errors never quote key
// material from the input.
func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"active":"a","keys":[{"id":"a","created":"2026-11-01T00:00:00Z","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}]}`))
	f.Add([]byte(`{"version":1,"active":"a","keys":[{"id":"a","key":"AAEC"}]}`))
	f.Add([]byte(`{"version":1,`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"version":2,"active":"a","keys":[{"id":"a","created":"2026-11-01T00:00:00Z","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","promoted":"2026-11-01T00:00:00Z"},{"id":"b","created":"2026-11-01T00:00:00Z","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","retired":"2026-11-02T00:00:00Z"},{"id":"","created":"2026-11-01T00:00:00Z","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","legacy":true}]}`))
	f.Add([]byte(`{"version":1,"active":"a","active":"b","keys":[{"id":"a","created":"2026-11-01T00:00:00Z","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}]}`))
	f.Add([]byte(`{"version":1,"active":"a","keys":[{"id":"a","created":"2026-11-01T00:00:00Z","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","KEY":"AAAA"}]}`))
	f.Add([]byte(`{"version":2,"active":"a","keys":[{"id":"a","created":"2026-11-01T0:00:00,5Z","key":"AAECAwQFBgcICQoLDA0O\r\nDxAREhMUFRYXGBkaGxwdHh8="}]}]`))
	f.Add([]byte(`{"version":2.0,"active":"a","keys":[{"id":"a","created":"2024-02-29T23:59:59.123456789+05:30","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","ver\u017fion":nu`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parseKeyFile(data)
		if err != nil {
			// No "key" value may appear in the error (unless the same
			// string is also used as an id, which errors may name).
			var loose struct {
				Active string
				Keys   []struct{ ID, Key string }
			}
			_ = json.Unmarshal(data, &loose)
			ids := map[string]bool{}
			for _, k := range loose.Keys {
				ids[k.ID] = true
			}
			// A key pasted into "active" must not be echoed either.
			if len(loose.Active) >= 8 && !ids[loose.Active] && validKeyID(loose.Active) != nil && strings.Contains(err.Error(), loose.Active) {
				t.Fatalf("error quotes an invalid active id: %v", err)
			}
			for _, k := range loose.Keys {
				if len(k.Key) >= 8 && !ids[k.Key] && strings.Contains(err.Error(), k.Key) {
					t.Fatalf("error quotes key material: %v", err)
				}
			}
			return
		}
		if _, ok := ks.keys[ks.active]; !ok {
			t.Fatal("accepted a file whose active key is missing")
		}
		if len(ks.infos) != len(ks.keys)+len(ks.legacy)+len(ks.retired) {
			t.Fatal("infos and keys disagree")
		}
		// No duplicate or case-variant names got through: a reader that
		// keeps the first of two fields (or ignores case differently) sees
		// the same active key as the parser.
		var generic map[string]any
		if err := json.Unmarshal(data, &generic); err != nil {
			t.Fatalf("accepted input is not a JSON object: %v", err)
		}
		for name := range generic {
			if name != "version" && name != "active" && name != "keys" {
				t.Fatalf("accepted a top-level field %q", name)
			}
		}
		if FileKeyIDPrefix+generic["active"].(string) != ks.active {
			t.Fatalf("a generic reader sees active %v, the parser %q", generic["active"], ks.active)
		}
	})
}
