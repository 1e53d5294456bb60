package keyring_test

import (
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
)

// TestUnknownFieldNameIsNotQuotedWhenItCouldBeAKey: key material pasted as
// a field name must not reach the error (and so the server's log on every
// reload); a short unknown name is still quoted, to help fix a typo.
func TestUnknownFieldNameIsNotQuotedWhenItCouldBeAKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, field, want string }{
		{"base64 key as a field name", testKey2, "unknown field"},
		{"hex key as a field name", strings.Repeat("ab", 32), "unknown field"},
		{"a short typo", "extra", `unknown field "extra"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			content := `{"version":1,"active":"a","keys":[{"id":"a","created":"2026-11-01T00:00:00Z","key":"` + testKey + `","` + tt.field + `":1}]}`
			path := writeFile(t, t.TempDir(), "keys.json", content)
			_, err := keyring.OpenFile(path, keyring.FileOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenFile: %v, want an error containing %q", err, tt.want)
			}
			if len(tt.field) > 20 && strings.Contains(err.Error(), tt.field) {
				t.Errorf("error quotes the field name, which may be key material: %v", err)
			}
		})
	}
}
