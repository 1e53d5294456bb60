package codec_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codec/internal/envelope"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// The vectors in this file are read by the Go tests and by the TypeScript
// package's tests (typescript/test): both implementations must reproduce
// them byte for byte. All keys in them are public test values.

// vectorV2Zlib is codec/testdata/vector-v2-zlib.json: an envelope/v2
// payload whose sealed plaintext is the SDK's binary/zlib form of the
// payload (codec.Options.Compress).
type vectorV2Zlib struct {
	Comment          string            `json:"comment"`
	KeyringFile      string            `json:"keyring_file"`
	Namespace        string            `json:"namespace"`
	KeyID            string            `json:"key_id"`
	DEK              string            `json:"dek"`
	WrappedDEK       string            `json:"wrapped_dek"`
	PayloadNonce     string            `json:"payload_nonce"`
	PlaintextPayload string            `json:"plaintext_payload"`
	InnerPayload     string            `json:"inner_payload"`
	AAD              string            `json:"aad"`
	SealedData       string            `json:"sealed_data"`
	MetadataHex      map[string]string `json:"metadata_hex"` // every metadata entry of the sealed payload, values hex
}

// vectorLegacy is codec/testdata/vector-legacy.json: payloads sealed the
// way the Temporal samples' static-key codec seals them, compressed first
// (the Go sample's default) or not.
type vectorLegacy struct {
	Comment     string             `json:"comment"`
	KeyringFile string             `json:"keyring_file"`
	StaticKey   string             `json:"static_key"`
	Cases       []vectorLegacyCase `json:"cases"`
}

type vectorLegacyCase struct {
	Name             string            `json:"name"`
	KeyID            string            `json:"key_id"`
	PayloadNonce     string            `json:"payload_nonce"`
	PlaintextPayload string            `json:"plaintext_payload"`
	SealedPlaintext  string            `json:"sealed_plaintext"` // what the static key seals: the payload, or its binary/zlib form
	SealedData       string            `json:"sealed_data"`
	MetadataHex      map[string]string `json:"metadata_hex"`
}

func payloadFromHex(t *testing.T, md map[string]string, data string) *commonpb.Payload {
	t.Helper()
	p := &commonpb.Payload{Metadata: map[string][]byte{}, Data: unhex(t, data)}
	for k, v := range md {
		p.Metadata[k] = unhex(t, v)
	}
	return p
}

func hexMetadata(md map[string][]byte) map[string]string {
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[k] = hex.EncodeToString(v)
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVectorV2Zlib checks the compressed envelope/v2 vector: the inner
// payload is the SDK's binary/zlib form of the plaintext, sealing it under
// the v2 AAD reproduces the sealed data, the codec opens the payload to the
// plaintext in its namespace and refuses it in another.
func TestVectorV2Zlib(t *testing.T) {
	path := filepath.Join("testdata", "vector-v2-zlib.json")
	if *update {
		writeVectorV2Zlib(t, path)
	}
	var v vectorV2Zlib
	readJSON(t, path, &v)
	var plain, inner commonpb.Payload
	if err := proto.Unmarshal(unhex(t, v.PlaintextPayload), &plain); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(unhex(t, v.InnerPayload), &inner); err != nil {
		t.Fatal(err)
	}
	sdkDec, err := converter.NewZlibCodec(converter.ZlibCodecOptions{}).Decode([]*commonpb.Payload{&inner})
	if err != nil {
		t.Fatal(err)
	}
	if string(inner.Metadata["encoding"]) != "binary/zlib" || len(inner.Metadata) != 1 || !proto.Equal(sdkDec[0], &plain) {
		t.Fatalf("inner payload is not the SDK's binary/zlib form of the plaintext: %v", &inner)
	}
	wrapped := unhex(t, v.WrappedDEK)
	aad := envelope.AADv2(v.Namespace, v.KeyID, wrapped)
	if got := hex.EncodeToString(aad); got != v.AAD {
		t.Fatalf("AAD = %s, want %s", got, v.AAD)
	}
	sealed, err := envelope.SealWithNonce(gcm(t, unhex(t, v.DEK)), aad, &inner, bytes.NewReader(unhex(t, v.PayloadNonce)))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(sealed); got != v.SealedData {
		t.Fatalf("sealed data = %s, want %s", got, v.SealedData)
	}
	want := hexMetadata(envelope.NewMetadataV2(v.Namespace, v.KeyID, wrapped).Map())
	if !equalMaps(v.MetadataHex, want) {
		t.Fatalf("metadata_hex = %v, want %v", v.MetadataHex, want)
	}

	c := newCodec(t, openKeyFile(t, filepath.Join("testdata", v.KeyringFile)), codec.Options{Namespace: v.Namespace})
	out, err := c.DecodeContext(context.Background(), []*commonpb.Payload{payloadFromHex(t, v.MetadataHex, v.SealedData)})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out[0], &plain) {
		t.Fatalf("decoded %v, want %v", out[0], &plain)
	}
	_, err = c.ForNamespace("sandbox").DecodeContext(context.Background(), []*commonpb.Payload{payloadFromHex(t, v.MetadataHex, v.SealedData)})
	if !errors.Is(err, codec.ErrNamespace) {
		t.Fatalf("decode in another namespace: %v, want ErrNamespace", err)
	}
	// A codec with Compress seals this plaintext in the same form.
	cc := newCodec(t, openKeyFile(t, filepath.Join("testdata", v.KeyringFile)), codec.Options{Namespace: v.Namespace, Compress: true})
	enc, err := cc.Encode([]*commonpb.Payload{&plain})
	if err != nil {
		t.Fatal(err)
	}
	if len(enc[0].Data) != len(sealed) {
		t.Errorf("Compress sealed %d bytes, the vector has %d: not the same inner form", len(enc[0].Data), len(sealed))
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func writeVectorV2Zlib(t *testing.T, path string) {
	t.Helper()
	var base zlibVector
	readJSON(t, filepath.Join("testdata", "vector-zlib.json"), &base)
	nonce := make([]byte, 12)
	for i := range nonce {
		nonce[i] = 0xd0 + byte(i)
	}
	var inner commonpb.Payload
	if err := proto.Unmarshal(unhex(t, base.InnerPayload), &inner); err != nil {
		t.Fatal(err)
	}
	namespace := "payments"
	wrapped := unhex(t, base.WrappedDEK)
	aad := envelope.AADv2(namespace, base.KeyID, wrapped)
	sealed, err := envelope.SealWithNonce(gcm(t, unhex(t, base.DEK)), aad, &inner, bytes.NewReader(nonce))
	if err != nil {
		t.Fatal(err)
	}
	writeJSON(t, path, vectorV2Zlib{
		Comment:          "Compressed envelope/v2 test vector for docs/FORMAT.md: the keys and inner binary/zlib payload of vector-zlib.json, sealed for namespace payments. Public test keys: never use them for real data.",
		KeyringFile:      base.KeyringFile,
		Namespace:        namespace,
		KeyID:            base.KeyID,
		DEK:              base.DEK,
		WrappedDEK:       base.WrappedDEK,
		PayloadNonce:     hex.EncodeToString(nonce),
		PlaintextPayload: base.PlaintextPayload,
		InnerPayload:     base.InnerPayload,
		AAD:              hex.EncodeToString(aad),
		SealedData:       hex.EncodeToString(sealed),
		MetadataHex:      hexMetadata(envelope.NewMetadataV2(namespace, base.KeyID, wrapped).Map()),
	})
}

// TestVectorLegacy checks the samples' static-key vectors: sealing the
// sealed plaintext under the static key with no additional data reproduces
// the sealed data, and the codec, with the static key in the key file as a
// legacy key, opens each payload to the plaintext in any namespace.
func TestVectorLegacy(t *testing.T) {
	path := filepath.Join("testdata", "vector-legacy.json")
	if *update {
		writeVectorLegacy(t, path)
	}
	var v vectorLegacy
	readJSON(t, path, &v)
	if got := string(unhex(t, v.StaticKey)); got != string(keyringtest.SamplesKey) {
		t.Fatalf("static key = %q, want the samples' key", got)
	}
	c := newCodec(t, openKeyFile(t, filepath.Join("testdata", v.KeyringFile)), codec.Options{})
	for _, tc := range v.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			sp := unhex(t, tc.SealedPlaintext)
			nonce := unhex(t, tc.PayloadNonce)
			if got := hex.EncodeToString(gcm(t, unhex(t, v.StaticKey)).Seal(append([]byte(nil), nonce...), nonce, sp, nil)); got != tc.SealedData {
				t.Fatalf("sealed data = %s, want %s", got, tc.SealedData)
			}
			want := hexMetadata(map[string][]byte{"encoding": []byte("binary/encrypted"), "encryption-key-id": []byte(tc.KeyID)})
			if !equalMaps(tc.MetadataHex, want) {
				t.Fatalf("metadata_hex = %v, want %v", tc.MetadataHex, want)
			}
			var plain commonpb.Payload
			if err := proto.Unmarshal(unhex(t, tc.PlaintextPayload), &plain); err != nil {
				t.Fatal(err)
			}
			for _, ns := range []string{"default", "payments"} {
				out, err := c.ForNamespace(ns).DecodeContext(context.Background(), []*commonpb.Payload{payloadFromHex(t, tc.MetadataHex, tc.SealedData)})
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(out[0], &plain) {
					t.Fatalf("decoded in %s: %v, want %v", ns, out[0], &plain)
				}
			}
		})
	}
}

func writeVectorLegacy(t *testing.T, path string) {
	t.Helper()
	plain := &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data:     []byte(`{"customer":"Ada Lovelace","card":"4111 1111 1111 1111","note":"` + strings.Repeat("sealed by the samples ", 4) + `"}`),
	}
	pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	z, err := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	zb, err := proto.MarshalOptions{Deterministic: true}.Marshal(z[0])
	if err != nil {
		t.Fatal(err)
	}
	aead := gcm(t, keyringtest.SamplesKey)
	v := vectorLegacy{
		Comment:     "Payloads sealed like the Temporal samples' static-key codec (no encryption-format, no additional data) for docs/FORMAT.md; the Go sample compresses first. The static key is the samples' public key: never use it for real data.",
		KeyringFile: "vector-legacy-keyring.json",
		StaticKey:   hex.EncodeToString(keyringtest.SamplesKey),
	}
	for i, tc := range []struct {
		name, keyID string
		sealedPT    []byte
	}{
		{"compressed under the default key ID (the Go sample)", "", zb},
		{"uncompressed under a named key", "test", pb},
	} {
		nonce := make([]byte, 12)
		for j := range nonce {
			nonce[j] = 0xe0 + byte(16*i+j)
		}
		v.Cases = append(v.Cases, vectorLegacyCase{
			Name:             tc.name,
			KeyID:            tc.keyID,
			PayloadNonce:     hex.EncodeToString(nonce),
			PlaintextPayload: hex.EncodeToString(pb),
			SealedPlaintext:  hex.EncodeToString(tc.sealedPT),
			SealedData:       hex.EncodeToString(aead.Seal(append([]byte(nil), nonce...), nonce, tc.sealedPT, nil)),
			MetadataHex:      hexMetadata(map[string][]byte{"encoding": []byte("binary/encrypted"), "encryption-key-id": []byte(tc.keyID)}),
		})
	}
	writeJSON(t, path, v)
}
