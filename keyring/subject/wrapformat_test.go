package subject_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
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
	dk, err := d.NewDataKey(context.Background(), h)
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
	got, err := d.UnwrapDataKeys(context.Background(), []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: wrapped}})
	if err != nil || !bytes.Equal(got[0].UnsafeBytes(), mine) {
		t.Fatalf("a key wrapped as documented: %v", err)
	}
}
