package codec_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codec/internal/envelope"
	"github.com/envelopecodec/envelope/keyring"
)

// vectorV2 is the envelope/v2 test vector of docs/FORMAT.md. All keys in it
// are public test values: never use them for real data.
type vectorV2 struct {
	Comment          string            `json:"comment"`
	KeyringFile      string            `json:"keyring_file"`
	Namespace        string            `json:"namespace"`
	KEK              string            `json:"kek"`
	KeyID            string            `json:"key_id"`
	DEK              string            `json:"dek"`
	WrapNonce        string            `json:"wrap_nonce"`
	WrapAAD          string            `json:"wrap_aad"`
	WrappedDEK       string            `json:"wrapped_dek"`
	PayloadNonce     string            `json:"payload_nonce"`
	PlaintextPayload string            `json:"plaintext_payload"`
	AAD              string            `json:"aad"`
	SealedData       string            `json:"sealed_data"`
	Metadata         map[string]string `json:"metadata"` // the sealed payload's text metadata entries
	// MetadataHex is every metadata entry of the sealed payload, the
	// wrapped DEK included, values hex.
	MetadataHex map[string]string `json:"metadata_hex"`
}

func readVectorV2(t *testing.T) vectorV2 {
	t.Helper()
	path := filepath.Join("testdata", "vector-v2.json")
	if *update {
		writeVectorV2(t, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v vectorV2
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// sealed returns the vector's sealed payload.
func (v vectorV2) sealed(t *testing.T) *commonpb.Payload {
	return payloadFromHex(t, v.MetadataHex, v.SealedData)
}

func vectorCodec(t *testing.T, v vectorV2) *codec.Codec {
	t.Helper()
	kr, err := keyring.OpenFile(filepath.Join("testdata", v.KeyringFile), keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(kr, codec.Options{Namespace: v.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestVectorV2 checks the envelope/v2 vector of docs/FORMAT.md byte for
// byte: the key wrap, the additional data with the namespace, the sealed
// data and the metadata the codec writes; then that the codec opens it in
// its namespace only.
func TestVectorV2(t *testing.T) {
	v := readVectorV2(t)
	wrapAAD := append([]byte("envelope/kek-wrap/v1\x00"), v.KeyID...)
	if got := hex.EncodeToString(wrapAAD); got != v.WrapAAD {
		t.Fatalf("wrap AAD = %s, want %s", got, v.WrapAAD)
	}
	nonce := unhex(t, v.WrapNonce)
	wrapped := gcm(t, unhex(t, v.KEK)).Seal(append([]byte(nil), nonce...), nonce, unhex(t, v.DEK), wrapAAD)
	if got := hex.EncodeToString(wrapped); got != v.WrappedDEK {
		t.Fatalf("wrapped DEK = %s, want %s", got, v.WrappedDEK)
	}
	aad := envelope.AADv2(v.Namespace, v.KeyID, wrapped)
	if got := hex.EncodeToString(aad); got != v.AAD {
		t.Fatalf("AAD = %s, want %s", got, v.AAD)
	}
	// The AAD spelled out as docs/FORMAT.md writes it.
	spelled := []byte("temporal-envelope/v2\x00")
	for _, f := range [][]byte{[]byte(v.Namespace), []byte(v.KeyID), wrapped} {
		spelled = append(spelled, byte(len(f)>>24), byte(len(f)>>16), byte(len(f)>>8), byte(len(f)))
		spelled = append(spelled, f...)
	}
	if !bytes.Equal(spelled, aad) {
		t.Fatalf("AAD differs from the layout in docs/FORMAT.md")
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

	// The codec writes exactly this metadata for the vector's namespace and key.
	c := vectorCodec(t, v)
	enc, err := c.Encode([]*commonpb.Payload{&plain})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range v.Metadata {
		if got := string(enc[0].Metadata[k]); got != want {
			t.Errorf("codec wrote %s = %q, want %q", k, got, want)
		}
	}
	if len(enc[0].Metadata) != len(v.Metadata)+1 { // + the wrapped key, random per data key
		t.Errorf("codec wrote %d metadata entries, want %d", len(enc[0].Metadata), len(v.Metadata)+1)
	}
	// metadata_hex lists every entry: the text ones and the wrapped DEK.
	wantHex := hexMetadata(envelope.NewMetadataV2(v.Namespace, v.KeyID, wrapped).Map())
	if !equalMaps(v.MetadataHex, wantHex) {
		t.Errorf("metadata_hex = %v, want %v", v.MetadataHex, wantHex)
	}
	for k, val := range v.Metadata {
		if v.MetadataHex[k] != hex.EncodeToString([]byte(val)) {
			t.Errorf("metadata[%s] and metadata_hex[%s] differ", k, k)
		}
	}

	out, err := c.DecodeContext(context.Background(), []*commonpb.Payload{v.sealed(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out[0], &plain) {
		t.Fatalf("decoded %v, want %v", out[0], &plain)
	}
	_, err = c.ForNamespace("sandbox").DecodeContext(context.Background(), []*commonpb.Payload{v.sealed(t)})
	var ne *codec.NamespaceError
	if !errors.Is(err, codec.ErrNamespace) || !errors.As(err, &ne) || ne.Sealed != v.Namespace || ne.Decoding != "sandbox" {
		t.Fatalf("decode in another namespace: %v, want ErrNamespace naming %q and sandbox", err, v.Namespace)
	}
}

// TestVectorV2Tamper flips one bit in every field of the v2 vector's
// payload: each fails with the documented error and returns nothing.
func TestVectorV2Tamper(t *testing.T) {
	v := readVectorV2(t)
	flip := func(b []byte, i int) []byte {
		b = append([]byte(nil), b...)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name      string
		namespace string // decoding namespace; default the vector's
		mutate    func(p *commonpb.Payload)
		want      error
	}{
		{"nonce", "", func(p *commonpb.Payload) { p.Data = flip(p.Data, 3) }, codec.ErrDecrypt},
		{"ciphertext", "", func(p *commonpb.Payload) { p.Data = flip(p.Data, envelope.NonceSize+5) }, codec.ErrDecrypt},
		{"tag", "", func(p *commonpb.Payload) { p.Data = flip(p.Data, len(p.Data)-2) }, codec.ErrDecrypt},
		{"namespace, refused before the keyring", "", func(p *commonpb.Payload) {
			p.Metadata["encryption-namespace"] = flip(p.Metadata["encryption-namespace"], 0)
		}, codec.ErrNamespace},
		{"namespace, decoded in the edited namespace: the AAD binds it", "qayments", func(p *commonpb.Payload) {
			p.Metadata["encryption-namespace"] = flip(p.Metadata["encryption-namespace"], 0)
		}, codec.ErrDecrypt},
		{"key id", "", func(p *commonpb.Payload) { p.Metadata["encryption-key-id"] = flip(p.Metadata["encryption-key-id"], 8) }, keyring.ErrUnknownKey},
		{"wrapped key", "", func(p *commonpb.Payload) {
			p.Metadata["encryption-wrapped-key"] = flip(p.Metadata["encryption-wrapped-key"], 30)
		}, keyring.ErrUnwrap},
		{"format", "", func(p *commonpb.Payload) { p.Metadata["encryption-format"] = flip(p.Metadata["encryption-format"], 10) }, codec.ErrUnsupported},
		{"format downgraded to v1", "", func(p *commonpb.Payload) { p.Metadata["encryption-format"] = []byte("envelope/v1") }, codec.ErrMalformed},
		{"format downgraded to v1, namespace removed", "", func(p *commonpb.Payload) {
			p.Metadata["encryption-format"] = []byte("envelope/v1")
			delete(p.Metadata, "encryption-namespace")
		}, codec.ErrDecrypt},
		{"namespace removed", "", func(p *commonpb.Payload) { delete(p.Metadata, "encryption-namespace") }, codec.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := vectorCodec(t, v)
			if tt.namespace != "" {
				c = c.ForNamespace(tt.namespace)
			}
			p := v.sealed(t)
			tt.mutate(p)
			out, err := c.DecodeContext(context.Background(), []*commonpb.Payload{p})
			if !errors.Is(err, tt.want) || out != nil {
				t.Fatalf("got %v, %v; want %v and no payloads", out, err, tt.want)
			}
			if bytes.Contains([]byte(err.Error()), []byte("Lovelace")) {
				t.Errorf("error leaks plaintext: %v", err)
			}
		})
	}
}

func writeVectorV2(t *testing.T, path string) {
	t.Helper()
	seq := func(start byte, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	kek, dek := seq(0x00, 32), seq(0x40, 32)
	wrapNonce, payloadNonce := seq(0x80, 12), seq(0xb0, 12)
	keyID, namespace := "local/vector", "payments"
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
	aad := envelope.AADv2(namespace, keyID, wrapped)
	sealed, err := envelope.SealWithNonce(gcm(t, dek), aad, plain, bytes.NewReader(payloadNonce))
	if err != nil {
		t.Fatal(err)
	}
	v := vectorV2{
		Comment:          "envelope/v2 test vector for docs/FORMAT.md. Public test keys: never use them for real data.",
		KeyringFile:      "vector-keyring.json",
		Namespace:        namespace,
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
		Metadata: map[string]string{
			"encoding":             "binary/encrypted",
			"encryption-format":    "envelope/v2",
			"encryption-namespace": namespace,
			"encryption-key-id":    keyID,
		},
		MetadataHex: hexMetadata(envelope.NewMetadataV2(namespace, keyID, wrapped).Map()),
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
