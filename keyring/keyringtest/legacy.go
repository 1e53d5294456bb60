package keyringtest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"
)

// LegacyStaticKey is the static key LegacyKeyFile uses, under the ID
// "test". A public test value: never use it for real data.
var LegacyStaticKey = bytes.Repeat([]byte{0x5a}, 32)

// SealLikeSamples seals p the way the encryption codec of the Temporal
// samples does: AES-256-GCM under one static key, no additional data,
// data = nonce(12) ‖ ciphertext ‖ tag, metadata encoding binary/encrypted
// and encryption-key-id, no encryption-format.
func SealLikeSamples(t testing.TB, static []byte, keyID string, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	pt, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(static)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("binary/encrypted"), "encryption-key-id": []byte(keyID)},
		Data:     aead.Seal(nonce, nonce, pt, nil),
	}
}

// LegacyKeyFile writes a key file (mode 0600, in t.TempDir()) with an
// active envelope key "new" and LegacyStaticKey as the samples' key "test"
// marked "legacy": true. It returns the file's path, a payload sealed like
// the samples under that key, and the payload's plaintext.
func LegacyKeyFile(t testing.TB) (path string, sealed, orig *commonpb.Payload) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "keyring.json")
	content := fmt.Sprintf(`{"version":1,"active":"new","keys":[
		{"id":"new","created":"2026-11-01T00:00:00Z","key":%q},
		{"id":"test","created":"2024-01-01T00:00:00Z","key":%q,"legacy":true}]}`,
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), base64.StdEncoding.EncodeToString(LegacyStaticKey))
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	orig = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"ssn":"078-05-1120"}`)}
	return path, SealLikeSamples(t, LegacyStaticKey, "test", orig), orig
}
