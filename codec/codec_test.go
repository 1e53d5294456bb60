package codec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

func newCodec(t testing.TB, kr keyring.Keyring, opts codec.Options) *codec.Codec {
	t.Helper()
	c, err := codec.New(kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func jsonPayload(s string) *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain"), "custom": []byte("meta")},
		Data:     []byte(s),
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		payloads []*commonpb.Payload
	}{
		{"no payloads", nil},
		{"one small JSON payload", []*commonpb.Payload{jsonPayload(`"secret"`)}},
		{"an empty payload", []*commonpb.Payload{{}}},
		{"a payload with only metadata", []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("binary/null")}}}},
		{"a large payload", []*commonpb.Payload{{Data: bytes.Repeat([]byte("x"), 1<<20)}}},
		{"a nil payload among others", []*commonpb.Payload{jsonPayload("1"), nil, jsonPayload("2")}},
		{"many payloads", func() (ps []*commonpb.Payload) {
			for i := range 500 {
				ps = append(ps, jsonPayload(fmt.Sprint(i)))
			}
			return ps
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCodec(t, keyringtest.New(), codec.Options{})
			orig := make([]*commonpb.Payload, len(tt.payloads))
			for i, p := range tt.payloads {
				if p != nil {
					orig[i] = proto.Clone(p).(*commonpb.Payload)
				}
			}
			enc, err := c.Encode(tt.payloads)
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) != len(tt.payloads) {
				t.Fatalf("encode returned %d payloads, want %d", len(enc), len(tt.payloads))
			}
			for i, p := range enc {
				if p == nil {
					continue
				}
				if got := string(p.Metadata["encoding"]); got != "binary/encrypted" {
					t.Errorf("payload %d encoding = %q, want binary/encrypted", i, got)
				}
				if _, ok := p.Metadata["custom"]; ok {
					t.Errorf("payload %d leaks its original metadata", i)
				}
				if len(tt.payloads[i].GetData()) > 4 && bytes.Contains(p.Data, tt.payloads[i].Data) {
					t.Errorf("payload %d data holds the plaintext", i)
				}
			}
			for i := range orig {
				if !proto.Equal(orig[i], tt.payloads[i]) {
					t.Fatalf("encode modified input payload %d", i)
				}
			}
			dec, err := c.Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			for i := range orig {
				if !proto.Equal(dec[i], orig[i]) {
					t.Fatalf("payload %d: decoded %v, want %v", i, dec[i], orig[i])
				}
			}
		})
	}
}

func TestDecodePassesForeignPayloadsThrough(t *testing.T) {
	t.Parallel()
	c := newCodec(t, keyringtest.New(), codec.Options{})
	foreign := []*commonpb.Payload{
		jsonPayload(`{"plain":"history from before encryption"}`),
		{Metadata: map[string][]byte{"encoding": []byte("binary/zlib")}, Data: []byte{1, 2, 3}},
		{Data: []byte("no metadata")},
	}
	out, err := c.Decode(foreign)
	if err != nil {
		t.Fatal(err)
	}
	for i := range foreign {
		if out[i] != foreign[i] {
			t.Errorf("payload %d was not passed through unchanged", i)
		}
	}
}

func TestEncodeNeverEncryptsTwice(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	c := newCodec(t, kr, codec.Options{})
	once, err := c.Encode([]*commonpb.Payload{jsonPayload(`"x"`)})
	if err != nil {
		t.Fatal(err)
	}
	twice, err := c.Encode(once)
	if err != nil {
		t.Fatal(err)
	}
	if twice[0] != once[0] {
		t.Fatal("an already sealed payload was sealed again")
	}
	dec, err := c.Decode(twice)
	if err != nil {
		t.Fatal(err)
	}
	if string(dec[0].Data) != `"x"` {
		t.Fatalf("decoded %q", dec[0].Data)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	c := newCodec(t, kr, codec.Options{DataKeyMaxUses: 1})
	old, err := c.Encode([]*commonpb.Payload{jsonPayload(`"under k1"`)})
	if err != nil {
		t.Fatal(err)
	}
	k2 := kr.Rotate()
	fresh, err := c.Encode([]*commonpb.Payload{jsonPayload(`"under k2"`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(old[0].Metadata["encryption-key-id"]); got != "test/1" {
		t.Errorf("old payload key id = %q, want test/1", got)
	}
	if got := string(fresh[0].Metadata["encryption-key-id"]); got != k2 {
		t.Errorf("new payload key id = %q, want %q", got, k2)
	}
	dec, err := c.Decode([]*commonpb.Payload{old[0], fresh[0]})
	if err != nil {
		t.Fatal(err)
	}
	if string(dec[0].Data) != `"under k1"` || string(dec[1].Data) != `"under k2"` {
		t.Fatalf("decoded %q and %q", dec[0].Data, dec[1].Data)
	}
}

// TestRotationWithKeyFile rotates a real key file and reloads it, as a
// running worker or codec server does.
func TestRotationWithKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyring.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCodec(t, kr, codec.Options{DataKeyMaxUses: 1})
	old, err := c.Encode([]*commonpb.Payload{jsonPayload(`"k1"`)})
	if err != nil {
		t.Fatal(err)
	}
	info, err := keyring.RotateFile(path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := kr.Reload(); err != nil || !changed {
		t.Fatalf("reload: changed=%v err=%v", changed, err)
	}
	fresh, err := c.Encode([]*commonpb.Payload{jsonPayload(`"k2"`)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(fresh[0].Metadata["encryption-key-id"]), keyring.FileKeyIDPrefix+info.ID; got != want {
		t.Fatalf("new payload key id = %q, want %q", got, want)
	}
	if bytes.Equal(old[0].Metadata["encryption-key-id"], fresh[0].Metadata["encryption-key-id"]) {
		t.Fatal("rotation did not change the key id")
	}
	// A fresh codec (empty caches) decodes both.
	dec, err := newCodec(t, kr, codec.Options{}).Decode([]*commonpb.Payload{old[0], fresh[0]})
	if err != nil {
		t.Fatal(err)
	}
	if string(dec[0].Data) != `"k1"` || string(dec[1].Data) != `"k2"` {
		t.Fatalf("decoded %q and %q", dec[0].Data, dec[1].Data)
	}
}

func sealOne(t *testing.T, c *codec.Codec) *commonpb.Payload {
	t.Helper()
	out, err := c.Encode([]*commonpb.Payload{jsonPayload(`"tamper me"`)})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

func TestDecodeRefusesTamperedPayloads(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	c := newCodec(t, kr, codec.Options{})
	other := keyringtest.New() // same key IDs, different keys
	tests := []struct {
		name   string
		mutate func(p *commonpb.Payload)
		want   error
	}{
		{"one bit of the nonce flipped", func(p *commonpb.Payload) { p.Data[0] ^= 1 }, codec.ErrDecrypt},
		{"one bit of the ciphertext flipped", func(p *commonpb.Payload) { p.Data[14] ^= 0x80 }, codec.ErrDecrypt},
		{"one bit of the tag flipped", func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 }, codec.ErrDecrypt},
		{"data truncated by one byte", func(p *commonpb.Payload) { p.Data = p.Data[:len(p.Data)-1] }, codec.ErrDecrypt},
		{"data truncated below nonce and tag", func(p *commonpb.Payload) { p.Data = p.Data[:20] }, codec.ErrMalformed},
		{"data removed", func(p *commonpb.Payload) { p.Data = nil }, codec.ErrMalformed},
		{"wrapped key bit flipped", func(p *commonpb.Payload) { p.Metadata["encryption-wrapped-key"][20] ^= 1 }, keyring.ErrUnwrap},
		{"wrapped key from another payload of another keyring", func(p *commonpb.Payload) {
			dk, _ := other.NewDataKey(context.Background(), "")
			p.Metadata["encryption-wrapped-key"] = dk.Wrapped
		}, keyring.ErrUnwrap},
		{"wrapped key missing", func(p *commonpb.Payload) { delete(p.Metadata, "encryption-wrapped-key") }, codec.ErrMalformed},
		{"wrapped key too long", func(p *commonpb.Payload) { p.Metadata["encryption-wrapped-key"] = make([]byte, 5000) }, codec.ErrMalformed},
		{"key id edited to an unknown key", func(p *commonpb.Payload) { p.Metadata["encryption-key-id"] = []byte("test/99") }, keyring.ErrUnknownKey},
		{"key id missing", func(p *commonpb.Payload) { delete(p.Metadata, "encryption-key-id") }, codec.ErrMalformed},
		{"format version changed to an unknown one", func(p *commonpb.Payload) { p.Metadata["encryption-format"] = []byte("envelope/v3") }, codec.ErrUnsupported},
		{"format missing, as in the static-key samples, with a keyring without legacy keys", func(p *commonpb.Payload) { delete(p.Metadata, "encryption-format") }, codec.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := proto.Clone(sealOne(t, c)).(*commonpb.Payload)
			tt.mutate(p)
			out, err := newCodec(t, kr, codec.Options{}).Decode([]*commonpb.Payload{jsonPayload("ok"), p})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if out != nil {
				t.Fatal("decode returned payloads along with an error")
			}
			if !strings.Contains(err.Error(), "payload 1") {
				t.Errorf("error %q does not name the failing payload", err)
			}
			if strings.Contains(err.Error(), "tamper me") {
				t.Errorf("error %q leaks plaintext", err)
			}
		})
	}
}

// TestSwappedWrappedKeyFailsEvenWhenCached checks that the additional data
// binds the wrapped key: two payloads sealed under different data keys
// cannot trade metadata, even when both data keys are cached.
func TestSwappedMetadataFails(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	c := newCodec(t, kr, codec.Options{DataKeyMaxUses: 1})
	a, b := sealOne(t, c), sealOne(t, c)
	if _, err := c.Decode([]*commonpb.Payload{a, b}); err != nil { // caches both keys
		t.Fatal(err)
	}
	swapped := &commonpb.Payload{Metadata: b.Metadata, Data: a.Data}
	if _, err := c.Decode([]*commonpb.Payload{swapped}); !errors.Is(err, codec.ErrDecrypt) {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
}

func TestDataKeyReuseIsBounded(t *testing.T) {
	t.Parallel()
	t.Run("by uses", func(t *testing.T) {
		t.Parallel()
		kr := keyringtest.New()
		c := newCodec(t, kr, codec.Options{DataKeyMaxUses: 10})
		for range 5 {
			ps := make([]*commonpb.Payload, 7)
			for i := range ps {
				ps[i] = jsonPayload("x")
			}
			if _, err := c.Encode(ps); err != nil {
				t.Fatal(err)
			}
		}
		// 35 payloads, 10 per key: 4 keys.
		if got := kr.NewDataKeyCalls(); got != 4 {
			t.Fatalf("NewDataKey calls = %d, want 4", got)
		}
	})
	t.Run("by age", func(t *testing.T) {
		t.Parallel()
		kr := keyringtest.New()
		now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		c := newCodec(t, kr, codec.WithNow(codec.Options{DataKeyMaxAge: time.Minute}, clock))
		enc := func() {
			if _, err := c.Encode([]*commonpb.Payload{jsonPayload("x")}); err != nil {
				t.Fatal(err)
			}
		}
		enc()
		enc()
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
		enc()
		if got := kr.NewDataKeyCalls(); got != 2 {
			t.Fatalf("NewDataKey calls = %d, want 2", got)
		}
	})
}

func TestEncodeFailsClearlyWhenKeyringIsDown(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	c := newCodec(t, kr, codec.Options{DataKeyMaxUses: 2})
	sealed := sealOne(t, c)
	if _, err := c.Decode([]*commonpb.Payload{sealed}); err != nil {
		t.Fatal(err)
	}
	kr.SetError(keyring.ErrUnavailable)
	// The cached data key still has one use left; decode is served from the cache.
	if _, err := c.Encode([]*commonpb.Payload{jsonPayload("x")}); err != nil {
		t.Fatalf("encode with a cached data key: %v", err)
	}
	if _, err := c.Decode([]*commonpb.Payload{sealed}); err != nil {
		t.Fatalf("decode from the cache: %v", err)
	}
	_, err := c.Encode([]*commonpb.Payload{jsonPayload("x")})
	if !errors.Is(err, keyring.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestDecodeUnwrapsEachDataKeyOnce(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	enc := newCodec(t, kr, codec.Options{DataKeyMaxUses: 100})
	ps := make([]*commonpb.Payload, 1000)
	for i := range ps {
		ps[i] = jsonPayload(fmt.Sprint(i))
	}
	sealed, err := enc.Encode(ps)
	if err != nil {
		t.Fatal(err)
	}
	dec := newCodec(t, kr, codec.Options{})
	before := kr.UnwrapCalls()
	out, err := dec.Decode(sealed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if string(out[i].Data) != fmt.Sprint(i) {
			t.Fatalf("payload %d decoded to %q", i, out[i].Data)
		}
	}
	if got := kr.UnwrapCalls() - before; got != 1 {
		t.Fatalf("UnwrapDataKeys calls for 10 distinct data keys = %d, want 1", got)
	}
	if _, err := dec.Decode(sealed); err != nil {
		t.Fatal(err)
	}
	if got := kr.UnwrapCalls() - before; got != 1 {
		t.Fatalf("a second decode called the keyring again (%d calls)", got)
	}
}

// namespaceKeyring records the namespaces it is asked for.
type namespaceKeyring struct {
	*keyringtest.Keyring
	mu  sync.Mutex
	got []string
}

func (k *namespaceKeyring) NewDataKey(ctx context.Context, ns string) (keyring.DataKey, error) {
	k.mu.Lock()
	k.got = append(k.got, ns)
	k.mu.Unlock()
	return k.Keyring.NewDataKey(ctx, ns)
}

func TestSerializationContextChoosesNamespace(t *testing.T) {
	t.Parallel()
	kr := &namespaceKeyring{Keyring: keyringtest.New()}
	c := newCodec(t, kr, codec.Options{})
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
	for _, sc := range []converter.SerializationContext{
		converter.WorkflowSerializationContext{Namespace: "payments", WorkflowID: "wf"},
		converter.ActivitySerializationContext{Namespace: "billing"},
	} {
		p, err := converter.WithDataConverterSerializationContext(dc, sc).ToPayload("secret")
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if err := converter.WithDataConverterSerializationContext(dc, sc).FromPayload(p, &s); err != nil || s != "secret" {
			t.Fatalf("round trip: %q, %v", s, err)
		}
	}
	if _, err := dc.ToPayload("no context"); err != nil {
		t.Fatal(err)
	}
	want := []string{"payments", "billing", "default"}
	if strings.Join(kr.got, ",") != strings.Join(want, ",") {
		t.Fatalf("namespaces asked = %v, want %v", kr.got, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	c := newCodec(t, kr, codec.Options{DataKeyMaxUses: 50, DecodeCacheSize: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				want := fmt.Sprintf("g%d-%d", g, i)
				enc, err := c.ForNamespace(fmt.Sprint("ns", g%3)).Encode([]*commonpb.Payload{jsonPayload(want)})
				if err != nil {
					errs <- err
					return
				}
				dec, err := c.ForNamespace(fmt.Sprint("ns", g%3)).Decode(enc)
				if err != nil {
					errs <- err
					return
				}
				if string(dec[0].Data) != want {
					errs <- fmt.Errorf("got %q, want %q", dec[0].Data, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	if _, err := codec.New(nil, codec.Options{}); err == nil {
		t.Error("New(nil keyring) succeeded")
	}
	if _, err := codec.New(keyringtest.New(), codec.Options{DataKeyMaxUses: -1}); err == nil {
		t.Error("New with negative DataKeyMaxUses succeeded")
	}
}

// TestDecodesStaticKeySamplePayloads decodes a payload sealed the way the
// Temporal samples' encryption codec seals it (one static key, no
// additional data, no format metadata) with that key in the key file as a
// legacy key, so histories from before envelope stay readable.
func TestDecodesStaticKeySamplePayloads(t *testing.T) {
	t.Parallel()
	path, sample, orig := keyringtest.LegacyKeyFile(t)
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCodec(t, kr, codec.Options{})
	out, err := c.Decode([]*commonpb.Payload{sample})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out[0], orig) {
		t.Fatalf("decoded %v, want %v", out[0], orig)
	}
	// New payloads are sealed under the active envelope key, never the legacy one.
	enc, err := c.Encode([]*commonpb.Payload{orig})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(enc[0].Metadata["encryption-key-id"]); got != "local/new" {
		t.Fatalf("sealed under %q, want local/new", got)
	}
	// A tampered sample payload and an unknown static key fail loudly.
	sample.Data[len(sample.Data)-1] ^= 1
	if _, err := c.Decode([]*commonpb.Payload{sample}); !errors.Is(err, codec.ErrDecrypt) {
		t.Fatalf("tampered: err = %v, want ErrDecrypt", err)
	}
	sample.Metadata["encryption-key-id"] = []byte("other")
	if _, err := c.Decode([]*commonpb.Payload{sample}); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("unknown static key: err = %v, want ErrUnknownKey", err)
	}
}

// TestRetiredKeyStopsDecodingAfterCacheMaxAge removes a key from the
// keyring and checks that cached data keys under it stop decoding once
// DecodeCacheMaxAge has passed.
func TestRetiredKeyStopsDecodingAfterCacheMaxAge(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newCodec(t, kr, codec.WithNow(codec.Options{DecodeCacheMaxAge: time.Minute}, clock))
	sealed := sealOne(t, c)
	if _, err := c.Decode([]*commonpb.Payload{sealed}); err != nil {
		t.Fatal(err)
	}
	kr.Rotate()
	kr.Forget("test/1")
	if _, err := c.Decode([]*commonpb.Payload{sealed}); err != nil {
		t.Fatalf("within DecodeCacheMaxAge the cached key still decodes: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := c.Decode([]*commonpb.Payload{sealed}); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("after DecodeCacheMaxAge: err = %v, want ErrUnknownKey", err)
	}
}

func TestDecodeObserverCountsCacheHitsAndUnwraps(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	sealed, err := newCodec(t, kr, codec.Options{DataKeyMaxUses: 3}).Encode([]*commonpb.Payload{
		jsonPayload("1"), jsonPayload("2"), jsonPayload("3"), jsonPayload("4"), jsonPayload("5"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got [][2]int
	c := newCodec(t, kr, codec.Options{DecodeObserver: func(cached, unwrapped int) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, [2]int{cached, unwrapped})
	}})
	for range 2 {
		if _, err := c.Decode(sealed); err != nil {
			t.Fatal(err)
		}
	}
	// 5 payloads under 2 data keys: first both unwrapped, then both cached.
	if fmt.Sprint(got) != "[[0 2] [2 0]]" {
		t.Fatalf("observed %v, want [[0 2] [2 0]]", got)
	}
}
