package codec_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codec/internal/envelope"
	"github.com/envelopecodec/envelope/keyring"
)

var update = flag.Bool("update", false, "rewrite codec/testdata/vector.json")

// vector is the test vector of docs/FORMAT.md. All keys in it are public
// test values: never use them for real data.
type vector struct {
	Comment          string `json:"comment"`
	KeyringFile      string `json:"keyring_file"`
	KEK              string `json:"kek"`
	KeyID            string `json:"key_id"`
	DEK              string `json:"dek"`
	WrapNonce        string `json:"wrap_nonce"`
	WrapAAD          string `json:"wrap_aad"`
	WrappedDEK       string `json:"wrapped_dek"`
	PayloadNonce     string `json:"payload_nonce"`
	PlaintextPayload string `json:"plaintext_payload"`
	AAD              string `json:"aad"`
	SealedData       string `json:"sealed_data"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func gcm(t *testing.T, key []byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestVector checks the test vector of docs/FORMAT.md byte for byte: the
// key wrap of the local key file, the additional data, the sealed data, and
// that the codec decodes the sealed payload with the vector's key file.
func TestVector(t *testing.T) {
	path := filepath.Join("testdata", "vector.json")
	if *update {
		writeVector(t, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}

	// The key wrap: AES-256-GCM under the KEK, AAD "envelope/kek-wrap/v1\x00" ‖ key ID.
	wrapAAD := append([]byte("envelope/kek-wrap/v1\x00"), v.KeyID...)
	if got := hex.EncodeToString(wrapAAD); got != v.WrapAAD {
		t.Fatalf("wrap AAD = %s, want %s", got, v.WrapAAD)
	}
	nonce := unhex(t, v.WrapNonce)
	wrapped := gcm(t, unhex(t, v.KEK)).Seal(append([]byte(nil), nonce...), nonce, unhex(t, v.DEK), wrapAAD)
	if got := hex.EncodeToString(wrapped); got != v.WrappedDEK {
		t.Fatalf("wrapped DEK = %s, want %s", got, v.WrappedDEK)
	}

	// The payload's additional data and sealed data.
	aad := envelope.AAD(v.KeyID, wrapped)
	if got := hex.EncodeToString(aad); got != v.AAD {
		t.Fatalf("AAD = %s, want %s", got, v.AAD)
	}
	var plain commonpb.Payload
	if err := proto.Unmarshal(unhex(t, v.PlaintextPayload), &plain); err != nil {
		t.Fatal(err)
	}
	sealed, err := envelope.SealWithNonce(gcm(t, unhex(t, v.DEK)), aad, &plain, bytes.NewReader(unhex(t, v.PayloadNonce)))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(sealed); got != v.SealedData {
		t.Fatalf("sealed data = %s, want %s", got, v.SealedData)
	}

	// The codec opens it with the vector's key file.
	kr, err := keyring.OpenFile(filepath.Join("testdata", v.KeyringFile), keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := &commonpb.Payload{
		Metadata: map[string][]byte{
			"encoding":               []byte("binary/encrypted"),
			"encryption-format":      []byte("envelope/v1"),
			"encryption-key-id":      []byte(v.KeyID),
			"encryption-wrapped-key": wrapped,
		},
		Data: sealed,
	}
	out, err := c.DecodeContext(context.Background(), []*commonpb.Payload{in})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out[0], &plain) {
		t.Fatalf("decoded %v, want %v", out[0], &plain)
	}
}

func writeVector(t *testing.T, path string) {
	t.Helper()
	seq := func(start byte, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	kek, dek := seq(0x00, 32), seq(0x40, 32)
	wrapNonce, payloadNonce := seq(0x80, 12), seq(0xa0, 12)
	keyID := "local/vector"
	wrapAAD := append([]byte("envelope/kek-wrap/v1\x00"), keyID...)
	wrapped := gcm(t, kek).Seal(append([]byte(nil), wrapNonce...), wrapNonce, dek, wrapAAD)
	plain := &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data:     []byte(`{"customer":"Ada Lovelace","card":"4111 1111 1111 1111"}`),
	}
	pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	aad := envelope.AAD(keyID, wrapped)
	sealed, err := envelope.SealWithNonce(gcm(t, dek), aad, plain, bytes.NewReader(payloadNonce))
	if err != nil {
		t.Fatal(err)
	}
	v := vector{
		Comment:          "Test vector for docs/FORMAT.md. Public test keys: never use them for real data.",
		KeyringFile:      "vector-keyring.json",
		KEK:              hex.EncodeToString(kek),
		KeyID:            keyID,
		DEK:              hex.EncodeToString(dek),
		WrapNonce:        hex.EncodeToString(wrapNonce),
		WrapAAD:          hex.EncodeToString(wrapAAD),
		WrappedDEK:       hex.EncodeToString(wrapped),
		PayloadNonce:     hex.EncodeToString(payloadNonce),
		PlaintextPayload: hex.EncodeToString(pb),
		AAD:              hex.EncodeToString(aad),
		SealedData:       hex.EncodeToString(sealed),
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
