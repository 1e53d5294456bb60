package keyring_test

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// TestIndexMACsFollowTheDocumentedDerivation recomputes a key file's
// blind-index MAC and version as docs/SEARCH.md describes them, and pins
// them as a vector.
func TestIndexMACsFollowTheDocumentedDerivation(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "keys.json", keyFile("a", "a", testKey))
	f, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	version, macs, err := f.IndexMACs(context.Background(), "default", "email", "", [][]byte{[]byte("ada@example.com")})
	if err != nil {
		t.Fatal(err)
	}

	raw := bytes.Repeat([]byte{7}, 32) // testKey
	ictx, err := keyring.IndexContext("default", "email")
	if err != nil {
		t.Fatal(err)
	}
	wantCtx := "envelope/blind-index/v1\x00\x00\x07default\x00\x05email"
	if string(ictx) != wantCtx {
		t.Fatalf("IndexContext = %q, want %q", ictx, wantCtx)
	}
	fieldKey, _ := hkdf.Key(sha256.New, raw, []byte("envelope/blind-index/v1"), "field\x00"+string(ictx), 32)
	m := hmac.New(sha256.New, fieldKey)
	m.Write([]byte("ada@example.com"))
	tag, _ := hkdf.Key(sha256.New, raw, []byte("envelope/blind-index/v1"), "envelope/blind-index/v1 key-version", 3)

	if want := "k" + hex.EncodeToString(tag); version != want {
		t.Errorf("version = %q, want %q", version, want)
	}
	if want := m.Sum(nil); !bytes.Equal(macs[0], want) {
		t.Errorf("MAC = %x, want %x", macs[0], want)
	}
	// The vector in docs/SEARCH.md.
	const wantVersion, wantMAC = "k5bbd98", "584b0004264aa4f0e742b3d4eee9566d785389c73c60a768284738792a7506ef"
	if version != wantVersion || hex.EncodeToString(macs[0]) != wantMAC {
		t.Errorf("vector: got %s %x, want %s %s", version, macs[0], wantVersion, wantMAC)
	}
}

// TestIndexMACsAreSeparatePerNamespaceAndField: the same value in another
// namespace or field gives an unrelated MAC; the same inputs give the same.
func TestIndexMACsAreSeparatePerNamespaceAndField(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "keys.json", keyFile("a", "a", testKey))
	f, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mac := func(ns, field string) []byte {
		t.Helper()
		_, macs, err := f.IndexMACs(context.Background(), ns, field, "", [][]byte{[]byte("ada@example.com")})
		if err != nil {
			t.Fatal(err)
		}
		return macs[0]
	}
	base := mac("default", "email")
	if !bytes.Equal(base, mac("default", "email")) {
		t.Fatal("two calls gave different MACs")
	}
	if !bytes.Equal(base, mac("", "email")) {
		t.Fatal("the empty namespace is not \"default\"")
	}
	for _, tt := range []struct{ ns, field string }{{"billing", "email"}, {"default", "email2"}, {"defaul", "temail"}} {
		if bytes.Equal(base, mac(tt.ns, tt.field)) {
			t.Errorf("namespace %q field %q gives the MAC of default/email", tt.ns, tt.field)
		}
	}
}

// TestIndexKeyVersionsFollowRotation: after a rotation the new key's
// version comes first and the old one stays until it is retired; legacy
// keys never serve indexes.
func TestIndexKeyVersionsFollowRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	first, err := keyring.CreateFile(path, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.AddLegacyKey(path, "test", bytes.Repeat([]byte{1}, 32), now); err != nil {
		t.Fatal(err)
	}
	f, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := f.IndexKeyVersions(ctx, "default")
	if err != nil || len(v1) != 1 {
		t.Fatalf("versions before rotation = %v, %v; want one", v1, err)
	}
	in := [][]byte{[]byte("ada@example.com")}
	_, old, _ := f.IndexMACs(ctx, "default", "email", "", in)

	if _, err := keyring.RotateFile(path, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	v2, err := f.IndexKeyVersions(ctx, "default")
	if err != nil || len(v2) != 2 || v2[1] != v1[0] || v2[0] == v1[0] {
		t.Fatalf("versions after rotation = %v, %v; want [new %s]", v2, err, v1[0])
	}
	used, fresh, _ := f.IndexMACs(ctx, "default", "email", "", in)
	if used != v2[0] || bytes.Equal(fresh[0], old[0]) {
		t.Fatalf("after rotation: version %s, same MAC %v; want %s and a new MAC", used, bytes.Equal(fresh[0], old[0]), v2[0])
	}
	used, again, err := f.IndexMACs(ctx, "default", "email", v1[0], in)
	if err != nil || used != v1[0] || !bytes.Equal(again[0], old[0]) {
		t.Fatalf("old version after rotation: %s %v; want the old MAC", used, err)
	}

	if _, err := keyring.RetireKey(path, first.ID, now.Add(48*time.Hour), keyring.RetireOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	v3, _ := f.IndexKeyVersions(ctx, "default")
	if len(v3) != 1 || v3[0] != v2[0] {
		t.Fatalf("versions after retiring the first key = %v, want [%s]", v3, v2[0])
	}
	if _, _, err := f.IndexMACs(ctx, "default", "email", v1[0], in); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("retired version: %v, want ErrUnknownKey", err)
	}
}

// TestIndexMACsRefuseBadNames: field names and namespaces are bounded and
// checked; errors never contain the input.
func TestIndexMACsRefuseBadNames(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "keys.json", keyFile("a", "a", testKey))
	f, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	long := string(bytes.Repeat([]byte{'n'}, 256))
	for _, tt := range []struct{ name, ns, field string }{
		{"an empty field", "default", ""},
		{"a field with a space", "default", "e mail"},
		{"a field with a zero byte", "default", "email\x00x"},
		{"a namespace too long", long, "email"},
	} {
		_, _, err := f.IndexMACs(context.Background(), tt.ns, tt.field, "", [][]byte{[]byte("secret-value")})
		if err == nil {
			t.Errorf("%s: no error", tt.name)
		} else if bytes.Contains([]byte(err.Error()), []byte("secret-value")) {
			t.Errorf("%s: error contains the input: %v", tt.name, err)
		}
	}
}
