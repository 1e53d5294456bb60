package subject_test

import (
	"crypto/rand"
	"fmt"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// benchCodec returns a codec whose keyring has namespace keys in memory and
// subject keys in a Dir store.
func benchCodec(b *testing.B) (*codec.Codec, *subject.Keyring) {
	kr, _ := subject.New(keyringtest.New(), newDir(b), subject.Options{})
	c, _ := codec.New(kr, codec.Options{})
	return c, kr
}

func benchPayload() *commonpb.Payload {
	data := make([]byte, 1<<10)
	rand.Read(data)
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: data}
}

// BenchmarkSeal seals one 1 KiB payload per operation under the namespace
// key (baseline) and under a data subject's key, with warm seal caches.
func BenchmarkSeal(b *testing.B) {
	for _, subj := range []string{"", "customer-1"} {
		name := "namespace"
		if subj != "" {
			name = "subject"
		}
		b.Run(name, func(b *testing.B) {
			c, _ := benchCodec(b)
			c = c.ForSubject(subj)
			in := []*commonpb.Payload{benchPayload()}
			b.SetBytes(int64(len(in[0].Data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen opens one 1 KiB payload per operation with a warm decode
// cache ("warm") and with a fresh codec each time ("cold": the data key is
// unwrapped, for a subject from its key file), namespace key against
// subject key.
func BenchmarkOpen(b *testing.B) {
	for _, subj := range []string{"", "customer-1"} {
		for _, cold := range []bool{false, true} {
			name := fmt.Sprintf("namespace/cold=%v", cold)
			if subj != "" {
				name = fmt.Sprintf("subject/cold=%v", cold)
			}
			b.Run(name, func(b *testing.B) {
				c, kr := benchCodec(b)
				sealed, err := c.ForSubject(subj).Encode([]*commonpb.Payload{benchPayload()})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(sealed[0].Data)))
				b.ReportAllocs()
				for b.Loop() {
					dc := c
					if cold {
						dc, _ = codec.New(kr, codec.Options{DecodeCacheSize: 1})
					}
					if _, err := dc.Decode(sealed); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkHandle derives the handle of a data subject in a namespace
// with the Dir store's HMAC key (what every new subject seal key costs
// before the store call), against a cached handle (the Keyring's cache).
func BenchmarkHandle(b *testing.B) {
	d := newDir(b)
	b.Run("derive", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Handle(b.Context(), "orders", "ada.smith@example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := kr.Handle(b.Context(), "orders", "ada.smith@example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzDirUnwrap feeds the Dir store key IDs and wrapped keys as a payload
// would carry them: it must refuse what it cannot open with an error, and
// never panic.
func FuzzDirUnwrap(f *testing.F) {
	d := newDir(f)
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	dk, err := kr.NewSubjectDataKey(f.Context(), "default", "customer-1")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(dk.KeyID, dk.Wrapped)
	f.Add("subject/dir/customer-1/", []byte{})
	f.Add("subject/dir/../x/1", []byte("x"))
	f.Add("subject/dir/"+dk.KeyID[len("subject/dir/"):len("subject/dir/")+32]+"/0011223344556677", dk.Wrapped)
	f.Fuzz(func(t *testing.T, keyID string, wrapped []byte) {
		secrets, err := kr.UnwrapDataKeys(t.Context(), "default", []keyring.WrappedKey{{KeyID: keyID, Wrapped: wrapped}})
		if err == nil && (len(secrets) != 1 || secrets[0].Len() != 32) {
			t.Fatalf("accepted %q with %d secrets", keyID, len(secrets))
		}
		if err == nil && (keyID != dk.KeyID || string(wrapped) != string(dk.Wrapped)) {
			t.Fatalf("opened a changed wrapped key: %q", keyID)
		}
	})
}
