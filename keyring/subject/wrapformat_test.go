package subject_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestDirWrapFormat checks the dir store's wrapped data key against
// docs/FORMAT.md and docs/ERASURE.md, computed here with the standard
// library only: nonce(12) ‖ AES-256-GCM(subject key, nonce, DEK,
// AAD = "envelope/subject-wrap/v1" ‖ 0x00 ‖ key ID), key ID
// "subject/dir/<handle>/<16 hex digits>".
func TestDirWrapFormat(t *testing.T) {
	t.Parallel()
	d := newDir(t)
	h := handleOf(t, d, "customer-fmt")
	dk, err := d.NewDataKey(context.Background(), "default", h)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(d.Folder(), h+".key"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Generation string `json:"generation"`
		Key        []byte `json:"key"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if want := "subject/dir/" + h + "/" + file.Generation; dk.KeyID != want || len(file.Generation) != 16 {
		t.Fatalf("key ID %q, want %q with 16 hex digits", dk.KeyID, want)
	}
	block, err := aes.NewCipher(file.Key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, _ := cipher.NewGCM(block)
	aad := []byte("envelope/subject-wrap/v1\x00" + dk.KeyID)
	dek, err := gcm.Open(nil, dk.Wrapped[:12], dk.Wrapped[12:], aad)
	if err != nil {
		t.Fatalf("the wrapped key does not open as documented: %v", err)
	}
	if !bytes.Equal(dek, dk.Key.UnsafeBytes()) {
		t.Fatal("the documented unwrap gives another data key")
	}
	// And a key wrapped as documented unwraps.
	mine := bytes.Repeat([]byte{7}, keyring.DataKeySize)
	nonce := bytes.Repeat([]byte{1}, 12)
	wrapped := gcm.Seal(append([]byte(nil), nonce...), nonce, mine, aad)
	got, err := d.UnwrapDataKeys(context.Background(), "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: wrapped}})
	if err != nil || !bytes.Equal(got[0].UnsafeBytes(), mine) {
		t.Fatalf("a key wrapped as documented: %v", err)
	}
}

// TestSubjectVector checks keyring/subject/testdata/vector-subject.json
// (docs/FORMAT.md) with the standard library alone, then has a Dir store
// holding the vector's keys derive the same handle, name the same key ID
// and unwrap the same data key: handle = hex(HMAC-SHA256(handle key,
// "envelope/subject-handle/v1" ‖ 0x00 ‖ uvarint(len(namespace)) ‖
// namespace ‖ lower-case subject ID)[:16]).
func TestSubjectVector(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/vector-subject.json")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	hx := func(k string) []byte {
		b, err := hex.DecodeString(v[k])
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return b
	}
	in := []byte("envelope/subject-handle/v1\x00")
	in = binary.AppendUvarint(in, uint64(len(v["namespace"])))
	in = append(append(in, v["namespace"]...), strings.ToLower(v["subject"])...)
	if !bytes.Equal(in, hx("handle_input")) || strings.ToLower(v["subject"]) != v["canonical_subject"] {
		t.Fatalf("handle input %x, want %s", in, v["handle_input"])
	}
	m := hmac.New(sha256.New, hx("handle_key"))
	m.Write(in)
	if got := hex.EncodeToString(m.Sum(nil)[:16]); got != v["handle"] {
		t.Fatalf("handle %s, want %s", got, v["handle"])
	}
	if want := "subject/dir/" + v["handle"] + "/" + v["generation"]; v["key_id"] != want {
		t.Fatalf("key ID %s, want %s", v["key_id"], want)
	}
	aad := append([]byte("envelope/subject-wrap/v1\x00"), v["key_id"]...)
	if !bytes.Equal(aad, hx("wrap_aad")) {
		t.Fatalf("wrap AAD %x, want %s", aad, v["wrap_aad"])
	}
	block, _ := aes.NewCipher(hx("subject_key"))
	gcm, _ := cipher.NewGCM(block)
	nonce := hx("wrap_nonce")
	if got := gcm.Seal(append([]byte(nil), nonce...), nonce, hx("dek"), aad); !bytes.Equal(got, hx("wrapped_dek")) {
		t.Fatalf("wrapped DEK %x, want %s", got, v["wrapped_dek"])
	}

	// A Dir store with the vector's handle key and subject key.
	dir := filepath.Join(t.TempDir(), "s")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, doc any) {
		b, _ := json.Marshal(doc)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("store.json", map[string]any{"version": 1, "store": "dir", "id": "vector", "handle_key": hx("handle_key")})
	write(v["handle"]+".key", map[string]any{"version": 2, "handle": v["handle"], "generation": v["generation"], "created": "2026-01-01T00:00:00Z", "key": hx("subject_key")})
	d, err := subject.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	if h, err := kr.Handle(context.Background(), v["namespace"], v["subject"]); err != nil || h != v["handle"] {
		t.Fatalf("the store's handle %s (%v), want %s", h, err, v["handle"])
	}
	dk, err := kr.NewSubjectDataKey(context.Background(), v["namespace"], v["subject"])
	if err != nil || dk.KeyID != v["key_id"] {
		t.Fatalf("the store's key ID %q (%v), want %s", dk.KeyID, err, v["key_id"])
	}
	got, err := d.UnwrapDataKeys(context.Background(), "default", []keyring.WrappedKey{{KeyID: v["key_id"], Wrapped: hx("wrapped_dek")}})
	if err != nil || !bytes.Equal(got[0].UnsafeBytes(), hx("dek")) {
		t.Fatalf("the store unwraps the vector: %v", err)
	}
}
