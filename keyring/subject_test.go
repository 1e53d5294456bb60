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

func TestCanonicalSubjectAndHandles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Alice@Example.com", "alice@example.com"},
		{"alice@example.com", "alice@example.com"},
		{"Customer-42", "customer-42"},
	} {
		if got, err := keyring.CanonicalSubject(tc.in); err != nil || got != tc.want {
			t.Errorf("CanonicalSubject(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := keyring.CanonicalSubject("a/b"); err == nil {
		t.Error("CanonicalSubject accepted an invalid ID")
	}
	for h, ok := range map[string]bool{
		strings.Repeat("0f", 16):          true,
		strings.Repeat("0F", 16):          false,
		strings.Repeat("0", 31):           false,
		strings.Repeat("0", 33):           false,
		"ada.smith@example.com-padding-x": false,
	} {
		if err := keyring.ValidSubjectHandle(h); (err == nil) != ok {
			t.Errorf("ValidSubjectHandle(%q) = %v, want ok %v", h, err, ok)
		}
	}
}
