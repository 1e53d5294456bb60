package blindindex_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/envelopecodec/envelope/blindindex"
	"github.com/envelopecodec/envelope/keyring"
)

// newKeyFile creates a key file with one key (as `codec-server keys new`
// does) and opens it.
func newKeyFile(t testing.TB) (*keyring.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	f, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return f, path
}

func newIndex(t testing.TB, keys keyring.IndexKeys, opts blindindex.Options) *blindindex.Index {
	t.Helper()
	ix, err := blindindex.New(keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, _ := newKeyFile(t)
	ix := newIndex(t, f, blindindex.Options{Fields: map[string]blindindex.Field{"ref": {Bits: 16}}})
	versions, _ := f.IndexKeyVersions(ctx, "default")
	tok := func(ns, field, value string) string {
		t.Helper()
		s, err := ix.Token(ctx, ns, field, value)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ada := tok("default", "email", "ada@example.com")

	t.Run("a token is the key version, a dot and 64 bits of hex", func(t *testing.T) {
		if err := blindindex.ValidToken(ada); err != nil || !strings.HasPrefix(ada, versions[0]+".") || len(ada) != len(versions[0])+1+16 {
			t.Fatalf("token %q (%v), want %s. and 16 hex digits", ada, err, versions[0])
		}
	})
	t.Run("Field.Bits sets the length", func(t *testing.T) {
		if s := tok("default", "ref", "R-1"); len(s) != len(versions[0])+1+4 {
			t.Fatalf("16-bit token %q", s)
		}
	})
	for _, tt := range []struct {
		name      string
		ns, field string
		value     string
		same      bool
	}{
		{"the same value gives the same token", "default", "email", "ada@example.com", true},
		{"the empty namespace is default", "", "email", "ada@example.com", true},
		{"e-mails are trimmed, NFKC-normalised and case-folded", "default", "email", " ＡＤＡ@Example.COM\t", true},
		{"another value gives another token", "default", "email", "grace@example.com", false},
		{"another namespace gives another token", "billing", "email", "ada@example.com", false},
		{"another field gives another token", "default", "contact", "ada@example.com", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tok(tt.ns, tt.field, tt.value); (got == ada) != tt.same {
				t.Fatalf("token %q vs %q: same = %v, want %v", got, ada, got == ada, tt.same)
			}
		})
	}
	t.Run("Tokens computes a batch in order", func(t *testing.T) {
		ts, err := ix.Tokens(ctx, "default", "email", []string{"grace@example.com", "ADA@example.com"})
		if err != nil || len(ts) != 2 || ts[1] != ada || ts[0] != tok("default", "email", "grace@example.com") {
			t.Fatalf("Tokens = %v, %v", ts, err)
		}
	})
}

func TestTokenErrorsNeverContainTheValue(t *testing.T) {
	t.Parallel()
	f, _ := newKeyFile(t)
	ix := newIndex(t, f, blindindex.Options{Fields: map[string]blindindex.Field{
		"custom": {Normalize: func(string) (string, error) { return "", errors.New("custom: refused") }},
	}})
	for _, tt := range []struct{ name, field, value string }{
		{"a phone number without digits", "phone", "call me maybe +"},
		{"invalid UTF-8", "email", "ada\xff@example.com"},
		{"white space only", "name", " \t "},
		{"the user's normaliser refuses", "custom", "ada-secret@example.com"},
		{"a bad field name", "e mail", "ada-secret@example.com"},
	} {
		_, err := ix.Token(context.Background(), "default", tt.field, tt.value)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if len(tt.value) > 3 && strings.Contains(err.Error(), tt.value) {
			t.Errorf("%s: error contains the value: %v", tt.name, err)
		}
	}
}

func TestNormalizers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		n    blindindex.Normalizer
		in   string
		want string
	}{
		{"trim", blindindex.Trim, "  Ada Lovelace \n", "Ada Lovelace"},
		{"email: case folding", blindindex.Email, "Ada.Lovelace@Example.COM", "ada.lovelace@example.com"},
		{"email: full-width letters (NFKC)", blindindex.Email, "ａｄａ@ｅｘａｍｐｌｅ.ｃｏｍ", "ada@example.com"},
		{"email: German sharp s folds to ss", blindindex.Email, "STRAẞE@example.com", "strasse@example.com"},
		{"name: inner white space collapsed", blindindex.Name, " ADA \t  Lovelace ", "ada lovelace"},
		{"name: ligature (NFKC)", blindindex.Name, "ﬁona", "fiona"},
		{"email: a Cherokee capital stays one spelling", blindindex.Email, "\u13cf@example.com", "\u13cf@example.com"},
		{"email: a Cherokee small letter folds to the capital", blindindex.Email, "\uab9f@example.com", "\u13cf@example.com"},
		{"phone: digits only", blindindex.Phone, "+44 (20) 7946-0958", "442079460958"},
		{"phone: full-width digits", blindindex.Phone, "０２０ ７９４６", "0207946"},
	} {
		got, err := tt.n(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%s: %q -> %q, %v; want %q", tt.name, tt.in, got, err, tt.want)
		}
	}
}

func TestNewRefusesBadFields(t *testing.T) {
	t.Parallel()
	f, _ := newKeyFile(t)
	for _, fields := range []map[string]blindindex.Field{
		{"email": {Bits: 6}},
		{"email": {Bits: 260}},
		{"email": {Bits: 30}},
		{"e mail": {}},
	} {
		if _, err := blindindex.New(f, blindindex.Options{Fields: fields}); err == nil {
			t.Errorf("New accepted %v", fields)
		}
	}
}

func TestQueryAfterRotationListsOldAndNewTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, path := newKeyFile(t)
	ix := newIndex(t, f, blindindex.Options{})
	old, err := ix.Token(ctx, "default", "email", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.RotateFile(path, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := ix.Token(ctx, "default", "email", "ada@example.com")
	ts, err := ix.QueryTokens(ctx, "default", "email", "ada@example.com")
	if err != nil || len(ts) != 2 || ts[0] != fresh || ts[1] != old || fresh == old {
		t.Fatalf("QueryTokens = %v, %v; want [%s %s]", ts, err, fresh, old)
	}
	clause, err := ix.Query(ctx, "default", "email", "CustomerEmailIdx", "ada@example.com")
	if want := "CustomerEmailIdx IN ('" + fresh + "', '" + old + "')"; err != nil || clause != want {
		t.Fatalf("Query = %q, %v; want %q", clause, err, want)
	}
}

func TestClauseRefusesWhatWouldNeedEscaping(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		attr   string
		tokens []string
	}{
		{"Customer Idx", []string{"v1.abcd"}},
		{"Idx') OR (1=1", []string{"v1.abcd"}},
		{"Idx", []string{"v1.ab'cd"}},
		{"Idx", []string{"v1.ABCD"}},
		{"Idx", nil},
		{"1Idx", []string{"v1.abcd"}},
	} {
		if got, err := blindindex.Clause(tt.attr, tt.tokens); err == nil {
			t.Errorf("Clause(%q, %q) = %q, want an error", tt.attr, tt.tokens, got)
		}
	}
}

func TestAttributeSetsTheKeywordToTheToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, _ := newKeyFile(t)
	ix := newIndex(t, f, blindindex.Options{})
	key := temporal.NewSearchAttributeKeyKeyword("CustomerEmailIdx")
	upd, err := ix.Attribute(ctx, "default", "email", key, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sa := temporal.NewSearchAttributes(upd)
	got, ok := sa.GetKeyword(key)
	want, _ := ix.Token(ctx, "default", "email", "ada@example.com")
	if !ok || got != want {
		t.Fatalf("attribute = %q (%v), want %q", got, ok, want)
	}
}
