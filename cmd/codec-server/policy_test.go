package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	binenc "encoding/binary"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// sealV1ByHand seals p in the envelope/v1 format of docs/FORMAT.md under a
// data key from kr, as codecs before v2 did.
func sealV1ByHand(t *testing.T, kr keyring.Keyring, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	dk, err := kr.NewDataKey(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("temporal-envelope/v1\x00")
	aad = binenc.BigEndian.AppendUint32(aad, uint32(len(dk.KeyID)))
	aad = append(aad, dk.KeyID...)
	aad = binenc.BigEndian.AppendUint32(aad, uint32(len(dk.Wrapped)))
	aad = append(aad, dk.Wrapped...)
	pt, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(dk.Key.UnsafeBytes())
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("binary/encrypted"), "encryption-format": []byte("envelope/v1"),
			"encryption-key-id": []byte(dk.KeyID), "encryption-wrapped-key": dk.Wrapped},
		Data: aead.Seal(nonce, nonce, pt, aad),
	}
}

// TestDecodePolicyFlags: --require-encryption, --refuse-v1 and
// --refuse-legacy, as the binary wires them; without them the same
// payloads decode.
func TestDecodePolicyFlags(t *testing.T) {
	t.Parallel()
	keys, legacy, _ := keyringtest.LegacyKeyFile(t)
	kr, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plain := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"injected"`)}
	v1 := sealV1ByHand(t, kr, &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"old"`)})
	for _, tt := range []struct {
		flag   string
		p      *commonpb.Payload
		reason string
	}{
		{"--require-encryption", plain, "not encrypted"},
		{"--refuse-v1", v1, "unsupported encryption format"},
		{"--refuse-legacy", legacy, "unsupported encryption format"},
	} {
		t.Run(tt.flag, func(t *testing.T) {
			t.Parallel()
			b, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{tt.p}})
			lax := runMain(t, "--listen", "127.0.0.1:0", "--keys-file", keys, "--audit=false", "--keys-reload", "0")
			if status, out := post(t, lax.URL()+"/decode", "", b); status != 200 {
				t.Fatalf("without %s: %d %s", tt.flag, status, out)
			}
			strict := runMain(t, "--listen", "127.0.0.1:0", "--keys-file", keys, "--audit=false", "--keys-reload", "0", tt.flag)
			status, out := post(t, strict.URL()+"/decode", "", b)
			if status != 422 || !strings.Contains(string(out), tt.reason) {
				t.Fatalf("with %s: %d %s, want 422 %q", tt.flag, status, out, tt.reason)
			}
		})
	}
}
