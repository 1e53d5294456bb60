package vault

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParseHMAC: an accepted transit/hmac answer re-encodes to the same
// bytes, with a version of the form v<N> and a 32-byte MAC.
func FuzzParseHMAC(f *testing.F) {
	mac := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, s := range []string{"vault:v1:" + mac, "vault:v12:" + mac, "vault:v0:" + mac, "vault:v01:" + mac, "vault:v1:" + mac[:10], "vault:v1", "", "vault:v1:" + mac[:42] + "B="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, m, ok := parseHMAC(s)
		if !ok {
			return
		}
		if len(m) != 32 || !strings.HasPrefix(v, "v") {
			t.Fatalf("parseHMAC(%q) = %q, %d bytes", s, v, len(m))
		}
		if again := "vault:" + v + ":" + base64.StdEncoding.EncodeToString(m); again != s {
			t.Fatalf("parseHMAC(%q) re-encodes to %q", s, again)
		}
	})
}
