package codec_test

import (
	"bytes"
	"compress/zlib"
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
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

func openKeyFile(t testing.TB, path string) *keyring.File {
	t.Helper()
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestDecodeSamplesFormat decodes every form the Temporal samples write:
// compressed (the Go sample's default) or not, under the default key ID ""
// or a named one, with nothing but the codec: no zlib codec in the chain.
func TestDecodeSamplesFormat(t *testing.T) {
	t.Parallel()
	kr := openKeyFile(t, keyringtest.SamplesKeyFile(t, "", "test"))
	c := newCodec(t, kr, codec.Options{})
	orig := jsonPayload(`{"card":"4111 1111 1111 1111"}`)
	for _, tt := range []struct {
		name   string
		sealed *commonpb.Payload
	}{
		{"compressed under the default key ID", keyringtest.SealLikeSamplesCompressed(t, keyringtest.SamplesKey, "", orig)},
		{"compressed under a named key", keyringtest.SealLikeSamplesCompressed(t, keyringtest.SamplesKey, "test", orig)},
		{"uncompressed under the default key ID", keyringtest.SealLikeSamples(t, keyringtest.SamplesKey, "", orig)},
		{"uncompressed under a named key", keyringtest.SealLikeSamples(t, keyringtest.SamplesKey, "test", orig)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := c.Decode([]*commonpb.Payload{tt.sealed})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(out[0], orig) {
				t.Fatalf("decoded %v, want %v", out[0], orig)
			}
		})
	}
}

func TestCompress(t *testing.T) {
	t.Parallel()
	big := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: bytes.Repeat([]byte(`{"a":"b"},`), 1000)}
	small := jsonPayload(`"x"`)
	for _, tt := range []struct {
		name       string
		opts       codec.Options
		p          *commonpb.Payload
		compressed bool
	}{
		{"off by default", codec.Options{}, big, false},
		{"on: a large compressible payload is compressed", codec.Options{Compress: true}, big, true},
		{"on: a payload below the threshold is not", codec.Options{Compress: true}, small, false},
		{"on: a payload below a custom threshold is not", codec.Options{Compress: true, CompressThreshold: 1 << 20}, big, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kr := keyringtest.New()
			c := newCodec(t, kr, tt.opts)
			enc, err := c.Encode([]*commonpb.Payload{tt.p})
			if err != nil {
				t.Fatal(err)
			}
			raw := proto.Size(tt.p) + envelope.Overhead
			if got := len(enc[0].Data) < raw; got != tt.compressed {
				t.Errorf("sealed data is %d bytes (uncompressed would be %d): compressed = %v, want %v", len(enc[0].Data), raw, got, tt.compressed)
			}
			// Any codec decodes it, with or without Compress.
			dec, err := newCodec(t, kr, codec.Options{}).Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(dec[0], tt.p) {
				t.Fatal("round trip changed the payload")
			}
		})
	}
}

// bomb returns a binary/zlib payload that decompresses to n zero bytes of
// data.
func bomb(t *testing.T, n int) *commonpb.Payload {
	t.Helper()
	inner, err := proto.Marshal(&commonpb.Payload{Data: make([]byte, n)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(inner)
	w.Close()
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/zlib")}, Data: buf.Bytes()}
}

func TestDecompressionIsBounded(t *testing.T) {
	t.Parallel()
	kr := openKeyFile(t, keyringtest.SamplesKeyFile(t, "test"))
	for _, tt := range []struct {
		name     string
		payloads []*commonpb.Payload
		max      int64
	}{
		{"one payload over the limit", []*commonpb.Payload{bomb(t, 2<<20)}, 1 << 20},
		{"payloads under the limit that together exceed it", []*commonpb.Payload{bomb(t, 600<<10), bomb(t, 600<<10)}, 1 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sealed := make([]*commonpb.Payload, len(tt.payloads))
			for i, p := range tt.payloads {
				sealed[i] = keyringtest.SealLikeSamples(t, keyringtest.SamplesKey, "test", p)
			}
			c := newCodec(t, kr, codec.Options{MaxDecompressedBytes: tt.max})
			if _, err := c.Decode(sealed); !errors.Is(err, codec.ErrMalformed) {
				t.Errorf("sealed: err = %v, want ErrMalformed", err)
			}
			z := codec.NewZlib(codec.ZlibOptions{MaxDecompressedBytes: tt.max})
			if _, err := z.Decode(tt.payloads); !errors.Is(err, codec.ErrMalformed) {
				t.Errorf("unsealed, zlib codec: err = %v, want ErrMalformed", err)
			}
			// Under the default limit the same payloads decode.
			if _, err := newCodec(t, kr, codec.Options{}).Decode(sealed); err != nil {
				t.Errorf("default limit: %v", err)
			}
		})
	}
}

func TestDecodeCorruptZlib(t *testing.T) {
	t.Parallel()
	kr := openKeyFile(t, keyringtest.SamplesKeyFile(t, "test"))
	good := bomb(t, 100)
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"not zlib at all", []byte("plaintext, not zlib")},
		{"truncated stream", good.Data[:len(good.Data)-6]},
		{"empty data", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/zlib")}, Data: tt.data}
			_, err := newCodec(t, kr, codec.Options{}).Decode([]*commonpb.Payload{keyringtest.SealLikeSamples(t, keyringtest.SamplesKey, "test", p)})
			if !errors.Is(err, codec.ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
			if _, err := codec.NewZlib(codec.ZlibOptions{}).Decode([]*commonpb.Payload{p}); !errors.Is(err, codec.ErrMalformed) {
				t.Errorf("zlib codec: err = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestZlibMatchesSDK checks that codec.Zlib reads and writes the format of
// the SDK's converter.NewZlibCodec.
func TestZlibMatchesSDK(t *testing.T) {
	t.Parallel()
	p := jsonPayload(strings.Repeat(`"compress me" `, 50))
	small := jsonPayload(`1`)
	sdk := converter.NewZlibCodec(converter.ZlibCodecOptions{})
	ours := codec.NewZlib(codec.ZlibOptions{})
	for _, tt := range []struct {
		name     string
		enc, dec converter.PayloadCodec
	}{
		{"SDK encodes, we decode", sdk, ours},
		{"we encode, the SDK decodes", ours, sdk},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enc, err := tt.enc.Encode([]*commonpb.Payload{p, small})
			if err != nil {
				t.Fatal(err)
			}
			if string(enc[0].Metadata["encoding"]) != "binary/zlib" || string(enc[1].Metadata["encoding"]) != "json/plain" {
				t.Fatalf("encodings %q %q, want binary/zlib for the large one only", enc[0].Metadata["encoding"], enc[1].Metadata["encoding"])
			}
			dec, err := tt.dec.Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(dec[0], p) || !proto.Equal(dec[1], small) {
				t.Fatal("round trip changed the payloads")
			}
		})
	}
	always, err := codec.NewZlib(codec.ZlibOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{small})
	if err != nil {
		t.Fatal(err)
	}
	if string(always[0].Metadata["encoding"]) != "binary/zlib" {
		t.Errorf("AlwaysEncode left a small payload uncompressed")
	}
	big := jsonPayload(strings.Repeat("x", 4096))
	same, err := codec.NewZlib(codec.ZlibOptions{DecodeOnly: true}).Encode([]*commonpb.Payload{big})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(same[0], big) {
		t.Errorf("DecodeOnly compressed a payload")
	}
}

// zlibVector is codec/testdata/vector-zlib.json, the compression vector of
// docs/FORMAT.md. Its keys are those of vector.json: public test values.
type zlibVector struct {
	Comment          string `json:"comment"`
	KeyringFile      string `json:"keyring_file"`
	KeyID            string `json:"key_id"`
	DEK              string `json:"dek"`
	WrappedDEK       string `json:"wrapped_dek"`
	PayloadNonce     string `json:"payload_nonce"`
	PlaintextPayload string `json:"plaintext_payload"`
	InnerPayload     string `json:"inner_payload"`
	SealedData       string `json:"sealed_data"`
}

// TestVectorZlib checks the compression vector: the inner payload is the
// SDK's binary/zlib form of the plaintext, the sealed data is the inner
// payload sealed as in vector.json, and the codec decodes it to the
// plaintext.
func TestVectorZlib(t *testing.T) {
	path := filepath.Join("testdata", "vector-zlib.json")
	if *update {
		writeZlibVector(t, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v zlibVector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
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
	aad := envelope.AAD(v.KeyID, wrapped)
	sealed, err := envelope.SealWithNonce(gcm(t, unhex(t, v.DEK)), aad, &inner, bytes.NewReader(unhex(t, v.PayloadNonce)))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(sealed); got != v.SealedData {
		t.Fatalf("sealed data = %s, want %s", got, v.SealedData)
	}
	c := newCodec(t, openKeyFile(t, filepath.Join("testdata", v.KeyringFile)), codec.Options{})
	out, err := c.DecodeContext(context.Background(), []*commonpb.Payload{{
		Metadata: map[string][]byte{
			"encoding":               []byte("binary/encrypted"),
			"encryption-format":      []byte("envelope/v1"),
			"encryption-key-id":      []byte(v.KeyID),
			"encryption-wrapped-key": wrapped,
		},
		Data: unhex(t, v.SealedData),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out[0], &plain) {
		t.Fatalf("decoded %v, want %v", out[0], &plain)
	}
}

func writeZlibVector(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vector.json"))
	if err != nil {
		t.Fatal(err)
	}
	var base vector
	if err := json.Unmarshal(raw, &base); err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 12)
	for i := range nonce {
		nonce[i] = 0xc0 + byte(i)
	}
	plain := &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data:     []byte(`{"customers":[` + strings.Repeat(`{"name":"Ada Lovelace","card":"4111 1111 1111 1111"},`, 8) + `{}]}`),
	}
	pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	z, err := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	ib, err := proto.MarshalOptions{Deterministic: true}.Marshal(z[0])
	if err != nil {
		t.Fatal(err)
	}
	wrapped := unhex(t, base.WrappedDEK)
	sealed, err := envelope.SealWithNonce(gcm(t, unhex(t, base.DEK)), envelope.AAD(base.KeyID, wrapped), z[0], bytes.NewReader(nonce))
	if err != nil {
		t.Fatal(err)
	}
	v := zlibVector{
		Comment:          "Compression test vector for docs/FORMAT.md: the KEK, DEK and wrapped DEK of vector.json. Public test keys: never use them for real data.",
		KeyringFile:      base.KeyringFile,
		KeyID:            base.KeyID,
		DEK:              base.DEK,
		WrappedDEK:       base.WrappedDEK,
		PayloadNonce:     hex.EncodeToString(nonce),
		PlaintextPayload: hex.EncodeToString(pb),
		InnerPayload:     hex.EncodeToString(ib),
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
