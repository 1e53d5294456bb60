package codecserver_test

import (
	"bytes"
	"slices"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// reverseCodec is a user's own codec: it reverses the data of every
// payload under encoding binary/reversed, and records the namespaces the
// server gave it.
type reverseCodec struct {
	mu  *sync.Mutex
	nss *[]string
	ns  string
}

func newReverseCodec() reverseCodec { return reverseCodec{mu: &sync.Mutex{}, nss: new([]string)} }

func (c reverseCodec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	if w, ok := sc.(converter.WorkflowSerializationContext); ok {
		c.mu.Lock()
		*c.nss = append(*c.nss, w.Namespace)
		c.mu.Unlock()
		c.ns = w.Namespace
	}
	return c
}

func (c reverseCodec) namespaces() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(*c.nss)
}

func (reverseCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		b, _ := proto.Marshal(p)
		slices.Reverse(b)
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/reversed")}, Data: b}
	}
	return out, nil
}

func (reverseCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if string(p.Metadata["encoding"]) != "binary/reversed" {
			out[i] = p
			continue
		}
		b := slices.Clone(p.Data)
		slices.Reverse(b)
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(b, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TestServerServesACodecChain runs a chain of the envelope codec, a user's
// codec and the zlib codec, in the SDK's order.
func TestServerServesACodecChain(t *testing.T) {
	t.Parallel()
	rev := newReverseCodec()
	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) {
		c.Codecs = []converter.PayloadCodec{c.Codec, rev, codec.NewZlib(codec.ZlibOptions{AlwaysEncode: true})}
		c.Codec = nil
	}})
	orig := plainPayloads(3, 200)
	hdr := map[string]string{"X-Namespace": "payments"}

	enc := e.do(call{path: "/encode", body: body(t, orig), headers: hdr})
	if enc.status != 200 {
		t.Fatalf("encode: %d %s", enc.status, enc.errText)
	}
	sealed := enc.payloads(t)
	// Encode runs the last codec first: the envelope codec seals last.
	for i, p := range sealed {
		if string(p.Metadata["encoding"]) != "binary/encrypted" {
			t.Fatalf("payload %d: encoding %q, want binary/encrypted outermost", i, p.Metadata["encoding"])
		}
	}
	// The SDK's own chain (envelope, user codec, SDK zlib) decodes what the
	// server encoded: same order, same formats.
	var err error
	sdkDecoded := sealed
	for _, c := range []converter.PayloadCodec{e.codec.ForNamespace("payments"), rev, converter.NewZlibCodec(converter.ZlibCodecOptions{})} {
		if sdkDecoded, err = c.Decode(sdkDecoded); err != nil {
			t.Fatal(err)
		}
	}
	for i := range orig {
		if !proto.Equal(sdkDecoded[i], orig[i]) {
			t.Fatalf("SDK-order decode of payload %d differs", i)
		}
	}

	dec := e.do(call{path: "/decode", body: body(t, sealed), headers: hdr})
	if dec.status != 200 {
		t.Fatalf("decode: %d %s", dec.status, dec.errText)
	}
	for i, p := range dec.payloads(t) {
		if !proto.Equal(p, orig[i]) {
			t.Errorf("payload %d: decoded %v, want %v", i, p, orig[i])
		}
	}
	if nss := rev.namespaces(); len(nss) == 0 || slices.ContainsFunc(nss, func(ns string) bool { return ns != "payments" }) {
		t.Errorf("the chained codec was told namespaces %q, want only payments", nss)
	}
	// The envelope codec in the chain used the request's namespace too.
	if nss := e.kr.namespaces(); !slices.Contains(nss, "payments") || slices.Contains(nss, "default") {
		t.Errorf("keyring asked for namespaces %q, want payments", nss)
	}
}

// TestServerDecodesSamplesPayloads checks the Temporal samples' formats
// through the server: sealed (compressed or not, default or named key ID),
// and compressed but not sealed, which needs the zlib codec in the chain.
func TestServerDecodesSamplesPayloads(t *testing.T) {
	t.Parallel()
	kr := openKeyFile(t, keyringtest.SamplesKeyFile(t, "", "test"))
	cdc, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	orig := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"card":"4111 1111 1111 1111"}`)}
	sdkZlib, err := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{orig})
	if err != nil {
		t.Fatal(err)
	}
	in := []*commonpb.Payload{
		keyringtest.SealLikeSamplesCompressed(t, keyringtest.SamplesKey, "", orig),
		keyringtest.SealLikeSamplesCompressed(t, keyringtest.SamplesKey, "test", orig),
		keyringtest.SealLikeSamples(t, keyringtest.SamplesKey, "", orig),
		keyringtest.SealLikeSamples(t, keyringtest.SamplesKey, "test", orig),
		sdkZlib[0],
	}
	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) {
		c.Keyring = kr
		c.Codec = nil
		c.Codecs = []converter.PayloadCodec{cdc, codec.NewZlib(codec.ZlibOptions{})}
	}})
	a := e.do(call{path: "/decode", body: body(t, in)})
	if a.status != 200 {
		t.Fatalf("decode: %d %s", a.status, a.errText)
	}
	for i, p := range a.payloads(t) {
		if !proto.Equal(p, orig) {
			t.Errorf("payload %d: decoded %v, want %v", i, p, orig)
		}
	}
	if bytes.Contains(a.body, []byte("binary/zlib")) || bytes.Contains(a.body, []byte("YmluYXJ5L3psaWI=")) {
		t.Errorf("answer still holds binary/zlib payloads: %s", a.body)
	}
}

func TestNewRefusesAmbiguousCodecs(t *testing.T) {
	t.Parallel()
	c, err := codec.New(keyringtest.New(), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  codecserver.Config
	}{
		{"no codec at all", codecserver.Config{Unauthenticated: true}},
		{"Codec and Codecs both", codecserver.Config{Unauthenticated: true, Codec: c, Codecs: []converter.PayloadCodec{c}}},
		{"a nil codec in the chain", codecserver.Config{Unauthenticated: true, Codecs: []converter.PayloadCodec{c, nil}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := codecserver.New(tt.cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func openKeyFile(t *testing.T, path string) *keyring.File {
	t.Helper()
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
