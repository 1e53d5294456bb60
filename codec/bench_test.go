package codec_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

var benchSizes = []int{1 << 10, 64 << 10, 1 << 20}

func benchPayload(size int) *commonpb.Payload {
	data := make([]byte, size)
	rand.Read(data)
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: data}
}

func rawGCM(b *testing.B) cipher.AEAD {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return aead
}

// BenchmarkEncode seals one payload per operation ("envelope") beside the
// baseline ("raw"): a bare AES-256-GCM Seal of the same bytes with a nonce
// from crypto/rand into a new slice, as any caller that must hand back fresh
// bytes does. scripts/benchratio.sh turns the pairs into ratios.
func BenchmarkEncode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d/envelope", size), func(b *testing.B) {
			c, err := codec.New(keyringtest.New(), codec.Options{})
			if err != nil {
				b.Fatal(err)
			}
			in := []*commonpb.Payload{benchPayload(size)}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("size=%d/raw", size), func(b *testing.B) {
			aead := rawGCM(b)
			pt := benchPayload(size).Data
			nonce := make([]byte, 12)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				rand.Read(nonce)
				_ = aead.Seal(nil, nonce, pt, nil)
			}
		})
	}
}

// BenchmarkDecode opens one payload per operation with its data key cached,
// as in steady state ("envelope"), beside a bare AES-256-GCM Open of the
// same bytes into a new slice ("raw").
func BenchmarkDecode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d/envelope", size), func(b *testing.B) {
			c, err := codec.New(keyringtest.New(), codec.Options{})
			if err != nil {
				b.Fatal(err)
			}
			sealed, err := c.Encode([]*commonpb.Payload{benchPayload(size)})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Decode(sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("size=%d/raw", size), func(b *testing.B) {
			aead := rawGCM(b)
			nonce := make([]byte, 12)
			ct := aead.Seal(nil, nonce, benchPayload(size).Data, nil)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := aead.Open(nil, nonce, ct, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
