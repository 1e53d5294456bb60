package keyring_test

import (
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
)

func TestValidSubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		id   string
		ok   bool
	}{
		{"a customer ID", "customer-42", true},
		{"an e-mail-like ID", "ada@example.com", true},
		{"one character", "a", true},
		{"the longest", strings.Repeat("a", keyring.MaxSubjectLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", keyring.MaxSubjectLen+1), false},
		{"a slash", "a/b", false},
		{"a parent folder", "..", false},
		{"a leading dot", ".hidden", false},
		{"a trailing dash", "customer-", false},
		{"a colon", "tenant:42", false},
		{"a space", "a b", false},
		{"non-ASCII", "kundé", false},
	} {
		if err := keyring.ValidSubject(tc.id); (err == nil) != tc.ok {
			t.Errorf("%s: ValidSubject(%q) = %v, want ok %v", tc.name, tc.id, err, tc.ok)
		}
	}
	for id, want := range map[string]bool{"subject/dir/a/1": true, "local/k": false, "vault/transit/subject/v1": false} {
		if keyring.IsSubjectKeyID(id) != want {
			t.Errorf("IsSubjectKeyID(%q) = %v, want %v", id, !want, want)
		}
	}
}
