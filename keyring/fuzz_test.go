package keyring

import (
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
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parseKeyFile(data)
		if err != nil {
			if strings.Contains(err.Error(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=") {
				t.Fatalf("error quotes key material: %v", err)
			}
			return
		}
		if _, ok := ks.keys[ks.active]; !ok {
			t.Fatal("accepted a file whose active key is missing")
		}
		if len(ks.infos) != len(ks.keys)+len(ks.legacy) {
			t.Fatal("infos and keys disagree")
		}
	})
}
