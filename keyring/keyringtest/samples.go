package keyringtest

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// SamplesKey is the static key of the Temporal samples' encryption codec
// (every key ID maps to it there). A public value: never use it for real
// data.
var SamplesKey = []byte("test-key-test-key-test-key-test!")

// SealLikeSamplesCompressed seals p the way the Go sample's default
// CompressAndEncryptDataConverter does: the SDK's zlib codec with
// AlwaysEncode turns p into a binary/zlib payload, which SealLikeSamples
// then seals.
func SealLikeSamplesCompressed(t testing.TB, static []byte, keyID string, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	z, err := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	return SealLikeSamples(t, static, keyID, z[0])
}

// SamplesKeyFile writes a key file (mode 0600, in t.TempDir()) with a fresh
// active envelope key "envelope-1" and SamplesKey as a legacy key under
// each of legacyIDs ("" is the samples' default ID), and returns its path.
func SamplesKeyFile(t testing.TB, legacyIDs ...string) string {
	t.Helper()
	type key struct {
		ID      string    `json:"id"`
		Created time.Time `json:"created"`
		Key     string    `json:"key"`
		Legacy  bool      `json:"legacy,omitempty"`
	}
	fresh := make([]byte, 32)
	for i := range fresh {
		fresh[i] = byte(i*7 + 3)
	}
	f := struct {
		Version int    `json:"version"`
		Active  string `json:"active"`
		Keys    []key  `json:"keys"`
	}{Version: 1, Active: "envelope-1", Keys: []key{{ID: "envelope-1", Created: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Key: base64.StdEncoding.EncodeToString(fresh)}}}
	for _, id := range legacyIDs {
		f.Keys = append(f.Keys, key{ID: id, Created: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Key: base64.StdEncoding.EncodeToString(SamplesKey), Legacy: true})
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keyring.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
