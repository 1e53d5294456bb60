package vault_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring/vault"
)

func TestParseKeyID(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		want vault.KeyID
	}{
		{"vault/transit/temporal/v1", vault.KeyID{Mount: "transit", Key: "temporal", Version: 1}},
		{"vault/transit/temporal-default/v42", vault.KeyID{Mount: "transit", Key: "temporal-default", Version: 42}},
		{"vault/team/prod/transit/k.e_y-1/v2147483647", vault.KeyID{Mount: "team/prod/transit", Key: "k.e_y-1", Version: 2147483647}},
	}
	for _, tc := range valid {
		got, err := vault.ParseKeyID(tc.in)
		if err != nil {
			t.Errorf("ParseKeyID(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseKeyID(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("ParseKeyID(%q).String() = %q", tc.in, got.String())
		}
	}
	invalid := []struct{ name, in string }{
		{"empty", ""},
		{"another keyring's id", "local/2026-01-01-abcdef"},
		{"no version", "vault/transit/key"},
		{"no mount", "vault/key/v1"},
		{"version without v", "vault/transit/key/1"},
		{"version zero", "vault/transit/key/v0"},
		{"leading zero", "vault/transit/key/v01"},
		{"negative version", "vault/transit/key/v-1"},
		{"signed version", "vault/transit/key/v+1"},
		{"version too large", "vault/transit/key/v2147483648"},
		{"empty key", "vault/transit//v1"},
		{"empty mount segment", "vault/a//key/v1"},
		{"dot-dot key", "vault/transit/../v1"},
		{"dot-dot mount", "vault/../key/v1"},
		{"space in key", "vault/transit/my key/v1"},
		{"query in key", "vault/transit/key?x=1/v1"},
		{"non-ASCII key", "vault/transit/kéy/v1"},
		{"too long", "vault/transit/" + strings.Repeat("k", 300) + "/v1"},
		{"key name too long", "vault/transit/" + strings.Repeat("k", 129) + "/v1"},
	}
	for _, tc := range invalid {
		if id, err := vault.ParseKeyID(tc.in); !errors.Is(err, vault.ErrKeyID) {
			t.Errorf("%s: ParseKeyID(%q) = %+v, %v; want an error", tc.name, tc.in, id, err)
		}
	}
}

// FuzzParseKeyID checks that accepted key IDs re-encode to the same bytes
// and rejected ones return the parse error.
func FuzzParseKeyID(f *testing.F) {
	for _, s := range []string{"vault/transit/temporal/v1", "vault/a/b/c/v12", "vault/transit/k/v01", "vault//k/v1", "local/x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := vault.ParseKeyID(s)
		if err != nil {
			if !errors.Is(err, vault.ErrKeyID) {
				t.Fatalf("ParseKeyID(%q): error %v does not wrap the parse error", s, err)
			}
			return
		}
		if id.String() != s {
			t.Fatalf("ParseKeyID(%q).String() = %q", s, id.String())
		}
		if id.Version < 1 || id.Key == "" || id.Mount == "" || strings.Contains(id.Key, "/") {
			t.Fatalf("ParseKeyID(%q) = %+v", s, id)
		}
	})
}

func ExampleParseKeyID() {
	id, err := vault.ParseKeyID("vault/transit/temporal-orders/v3")
	if err != nil {
		panic(err)
	}
	fmt.Println(id.Mount, id.Key, id.Version)
	// Output: transit temporal-orders 3
}
