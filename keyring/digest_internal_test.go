package keyring

import (
	"bytes"
	"testing"
)

// TestDigestKeepsNoKeyMaterial: the change-detection digest is a hash, not
// the file (which holds the keys).
func TestDigestKeepsNoKeyMaterial(t *testing.T) {
	key := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	ks, err := parseKeyFile([]byte(`{"version":1,"active":"a","keys":[{"id":"a","created":"2026-11-01T00:00:00Z","key":"` + key + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	d := ks.digest[:]
	if len(d) != 32 || bytes.Contains(d, []byte(key)) || bytes.Contains(d, []byte{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("digest is %d bytes and holds key material", len(d))
	}
}
