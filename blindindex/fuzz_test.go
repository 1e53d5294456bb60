package blindindex_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/envelopecodec/envelope/blindindex"
)

// FuzzNormalize feeds untrusted values to the built-in normalisers and
// the token path: a normaliser either refuses with one of its errors or
// returns valid, non-empty UTF-8 that it maps to itself again; a token is
// well formed, a clause of it is accepted, and no error holds the value.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"ada@example.com", " ＡＤＡ@Example.COM ", "+44 (20) 7946-0958", "STRAẞE", "ﬁona", "\xff", " ", "ǅ", "ΐ", "\u0345"} {
		f.Add(s)
	}
	keys, _ := newKeyFile(f)
	ix := newIndex(f, keys, blindindex.Options{})
	f.Fuzz(func(t *testing.T, value string) {
		for _, name := range []string{"trim", "email", "name", "phone"} {
			n, _ := blindindex.NormalizerByName(name)
			out, err := n(value)
			if err != nil {
				if !errors.Is(err, blindindex.ErrEmpty) && !errors.Is(err, blindindex.ErrInvalidUTF8) && !errors.Is(err, blindindex.ErrNoDigits) {
					t.Fatalf("%s: unexpected error %v", name, err)
				}
				continue
			}
			if out == "" || !utf8.ValidString(out) {
				t.Fatalf("%s: %q -> %q", name, value, out)
			}
			if again, err := n(out); err != nil || again != out {
				t.Fatalf("%s is not idempotent: %q -> %q -> %q (%v)", name, value, out, again, err)
			}
		}
		tok, err := ix.Token(context.Background(), "default", "email", value)
		if err != nil {
			if len(value) > 8 && strings.Contains(err.Error(), value) {
				t.Fatalf("error holds the value: %v", err)
			}
			return
		}
		if err := blindindex.ValidToken(tok); err != nil {
			t.Fatalf("token %q: %v", tok, err)
		}
		if _, err := blindindex.Clause("CustomerEmailIdx", []string{tok}); err != nil {
			t.Fatalf("clause of %q: %v", tok, err)
		}
	})
}
