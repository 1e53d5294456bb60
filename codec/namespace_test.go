package codec_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codec/internal/envelope"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// countingKeyring records the namespaces UnwrapDataKeys is called with.
type countingKeyring struct {
	keyring.Keyring
	mu     sync.Mutex
	unwrap []string
}

func (k *countingKeyring) UnwrapDataKeys(ctx context.Context, ns string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	k.mu.Lock()
	k.unwrap = append(k.unwrap, ns)
	k.mu.Unlock()
	return k.Keyring.UnwrapDataKeys(ctx, ns, keys)
}

func (k *countingKeyring) calls() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.unwrap...)
}

// keyrings returns the keyrings that ignore namespaces: a key file and the
// in-memory fake. Namespace isolation must not depend on the keyring.
func keyrings(t *testing.T) map[string]keyring.Keyring {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	f, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]keyring.Keyring{"key file": f, "keyringtest fake": keyringtest.New()}
}

func TestPayloadOpensOnlyInItsNamespace(t *testing.T) {
	t.Parallel()
	for name, kr := range keyrings(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ck := &countingKeyring{Keyring: kr}
			c := newCodec(t, ck, codec.Options{})
			secret := jsonPayload("payments secret")
			sealed, err := c.ForNamespace("payments").Encode([]*commonpb.Payload{secret})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(sealed[0].Metadata["encryption-namespace"]); got != "payments" {
				t.Fatalf("encryption-namespace = %q, want payments", got)
			}
			// Opened in its namespace first, so its data key is cached.
			if out, err := c.ForNamespace("payments").Decode(sealed); err != nil || !proto.Equal(out[0], secret) {
				t.Fatalf("decode in payments: %v", err)
			}
			before := len(ck.calls())
			for _, ns := range []string{"sandbox", "default", "Payments", "payments.acct"} {
				out, err := c.ForNamespace(ns).Decode(append([]*commonpb.Payload{jsonPayload("plain")}, sealed...))
				var ne *codec.NamespaceError
				if !errors.Is(err, codec.ErrNamespace) || !errors.As(err, &ne) || out != nil {
					t.Fatalf("decode in %s: %v, %v; want ErrNamespace and no payloads", ns, out, err)
				}
				if ne.Sealed != "payments" || ne.Decoding != ns {
					t.Errorf("NamespaceError names %q and %q, want payments and %s", ne.Sealed, ne.Decoding, ns)
				}
				if errors.Is(err, codec.ErrDecrypt) {
					t.Error("ErrNamespace is also ErrDecrypt; they must be distinct")
				}
				if !strings.Contains(err.Error(), "payload 1") || strings.Contains(err.Error(), "payments secret") {
					t.Errorf("error %q: want the payload's index and no plaintext", err)
				}
			}
			if after := len(ck.calls()); after != before {
				t.Errorf("the keyring was called %d times for refused payloads; the check comes first", after-before)
			}
		})
	}
}

func TestNamespaceAliases(t *testing.T) {
	t.Parallel()
	kr := &countingKeyring{Keyring: keyringtest.New()}
	c := newCodec(t, kr, codec.Options{NamespaceAliases: map[string][]string{"payments.acct": {"payments", "billing"}}})
	old, err := c.ForNamespace("payments").Encode([]*commonpb.Payload{jsonPayload("old")})
	if err != nil {
		t.Fatal(err)
	}
	newer, err := c.ForNamespace("payments.acct").Encode([]*commonpb.Payload{jsonPayload("new")})
	if err != nil {
		t.Fatal(err)
	}
	// The migrated namespace opens both, in one Decode.
	out, err := c.ForNamespace("payments.acct").Decode([]*commonpb.Payload{old[0], newer[0]})
	if err != nil || string(out[0].Data) != "old" || string(out[1].Data) != "new" {
		t.Fatalf("payments.acct decodes its own and payments' payloads: %v", err)
	}
	// The keyring unwrapped each for the namespace it was sealed for, so a
	// keyring with per-namespace keys finds payments' key.
	got := strings.Join(kr.calls(), ",")
	if got != "payments,payments.acct" && got != "payments.acct,payments" {
		t.Errorf("keyring asked for %s, want payments and payments.acct", got)
	}
	// One way only, and never for anyone else.
	for _, tt := range []struct {
		ns string
		p  *commonpb.Payload
	}{{"payments", newer[0]}, {"billing", old[0]}, {"sandbox", old[0]}} {
		if _, err := c.ForNamespace(tt.ns).Decode([]*commonpb.Payload{tt.p}); !errors.Is(err, codec.ErrNamespace) {
			t.Errorf("%s opened a payload of %s: %v", tt.ns, tt.p.Metadata["encryption-namespace"], err)
		}
	}
	// Without aliases nothing crosses.
	plain := newCodec(t, kr, codec.Options{})
	if _, err := plain.ForNamespace("payments.acct").Decode(old); !errors.Is(err, codec.ErrNamespace) {
		t.Errorf("without aliases: %v, want ErrNamespace", err)
	}
}

func TestNamespaceAliasesRefuseBadValues(t *testing.T) {
	t.Parallel()
	for _, aliases := range []map[string][]string{
		{"": {"a"}},
		{"b": {""}},
		{"b": {"b"}},
		{strings.Repeat("x", 256): {"a"}},
	} {
		if _, err := codec.New(keyringtest.New(), codec.Options{NamespaceAliases: aliases}); err == nil {
			t.Errorf("New accepted NamespaceAliases %v", aliases)
		}
	}
	// The codec keeps its own copy: changing the map later changes nothing.
	aliases := map[string][]string{"b": {"a"}}
	kr := keyringtest.New()
	c := newCodec(t, kr, codec.Options{NamespaceAliases: aliases})
	aliases["b"][0] = "z"
	sealed, _ := c.ForNamespace("a").Encode([]*commonpb.Payload{jsonPayload("x")})
	if _, err := c.ForNamespace("b").Decode(sealed); err != nil {
		t.Errorf("alias changed through the caller's map: %v", err)
	}
}

// sealV1 seals p in the envelope/v1 format, as codecs before v2 wrote it.
func sealV1(t *testing.T, kr keyring.Keyring, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	dk, err := kr.NewDataKey(context.Background(), "payments")
	if err != nil {
		t.Fatal(err)
	}
	data, err := envelope.SealWithNonce(gcm(t, dk.Key.UnsafeBytes()), envelope.AAD(dk.KeyID, dk.Wrapped), p, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &commonpb.Payload{Metadata: envelope.NewMetadata(dk.KeyID, dk.Wrapped).Map(), Data: data}
}

func TestV1PayloadsDecodeUnlessRefused(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	v1 := sealV1(t, kr, jsonPayload("v1"))
	if string(v1.Metadata["encryption-format"]) != "envelope/v1" {
		t.Fatal("not a v1 payload")
	}
	// v1 is not namespace-bound: it opens in any namespace (documented).
	c := newCodec(t, kr, codec.Options{})
	for _, ns := range []string{"payments", "sandbox"} {
		if out, err := c.ForNamespace(ns).Decode([]*commonpb.Payload{v1}); err != nil || string(out[0].Data) != "v1" {
			t.Errorf("v1 payload in %s: %v", ns, err)
		}
	}
	strict := newCodec(t, kr, codec.Options{RefuseV1: true})
	_, err := strict.ForNamespace("payments").Decode([]*commonpb.Payload{v1})
	if !errors.Is(err, codec.ErrUnsupported) || !strings.Contains(err.Error(), "RefuseV1") {
		t.Errorf("RefuseV1: %v, want ErrUnsupported naming RefuseV1", err)
	}
	v2, _ := strict.ForNamespace("payments").Encode([]*commonpb.Payload{jsonPayload("v2")})
	if _, err := strict.ForNamespace("payments").Decode(v2); err != nil {
		t.Errorf("RefuseV1 refused a v2 payload: %v", err)
	}
}

func TestRefuseLegacy(t *testing.T) {
	t.Parallel()
	path, sample, orig := keyringtest.LegacyKeyFile(t)
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := newCodec(t, kr, codec.Options{}).Decode([]*commonpb.Payload{sample}); err != nil || !proto.Equal(out[0], orig) {
		t.Fatalf("legacy decode by default: %v", err)
	}
	_, err = newCodec(t, kr, codec.Options{RefuseLegacy: true}).Decode([]*commonpb.Payload{jsonPayload("x"), sample})
	if !errors.Is(err, codec.ErrUnsupported) || !strings.Contains(err.Error(), "payload 1") || strings.Contains(err.Error(), "078-05") {
		t.Errorf("RefuseLegacy: %v, want ErrUnsupported for payload 1 and no plaintext", err)
	}
}

func TestRequireEncryption(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	lax := newCodec(t, kr, codec.Options{})
	strict := newCodec(t, kr, codec.Options{RequireEncryption: true})
	sealed, err := strict.Encode([]*commonpb.Payload{jsonPayload("sealed")})
	if err != nil {
		t.Fatal(err)
	}
	injected := jsonPayload("injected signal")
	if out, err := lax.Decode([]*commonpb.Payload{sealed[0], injected}); err != nil || out[1] != injected {
		t.Fatalf("by default unsealed payloads pass through: %v", err)
	}
	out, err := strict.Decode([]*commonpb.Payload{sealed[0], injected})
	if !errors.Is(err, codec.ErrNotEncrypted) || out != nil || !strings.Contains(err.Error(), "payload 1") {
		t.Errorf("RequireEncryption: %v, %v; want ErrNotEncrypted for payload 1", out, err)
	}
	if strings.Contains(err.Error(), "injected") {
		t.Errorf("error leaks the payload: %v", err)
	}
	// A payload with another encoding is not ours and not sealed either.
	foreign := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/zlib")}, Data: []byte{1}}
	if _, err := strict.Decode([]*commonpb.Payload{foreign}); !errors.Is(err, codec.ErrNotEncrypted) {
		t.Errorf("foreign payload with RequireEncryption: %v", err)
	}
	if out, err := strict.Decode([]*commonpb.Payload{sealed[0], nil}); err != nil || out[1] != nil {
		t.Errorf("nil payloads pass: %v", err)
	}
}

// TestDecodeCacheIsPerNamespace: a data key cached by one namespace is
// never used for another, even with the same key ID and wrapped key.
func TestDecodeCacheIsPerNamespace(t *testing.T) {
	t.Parallel()
	kr := &countingKeyring{Keyring: keyringtest.New()}
	c := newCodec(t, kr, codec.Options{})
	v1 := sealV1(t, kr, jsonPayload("v1"))
	for _, ns := range []string{"a", "b", "a", "b"} {
		if _, err := c.ForNamespace(ns).Decode([]*commonpb.Payload{v1}); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(kr.calls(), ","); got != "a,b" {
		t.Errorf("unwrap calls %s, want a,b (one per namespace, then cached)", got)
	}
}
