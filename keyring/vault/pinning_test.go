package vault_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// TestKeyIDCannotChooseTransitKey: without a {namespace} template,
// decryption is pinned to the configured key and Config.PreviousKeys. A
// payload whose key ID names another transit key of the mount (one the
// token may well use, as the root token here can) is refused before Vault
// is asked to decrypt with that key.
func TestKeyIDCannotChooseTransitKey(t *testing.T) {
	t.Parallel()
	v := testenv.StartVault(t)
	for _, k := range []string{"temporal", "temporal-old", "other-team"} {
		v.CreateKey(t, k)
	}
	cnt := newCounter()
	kr := open(t, v, vault.Config{KeyName: "temporal", PreviousKeys: []string{"temporal-old"}, Transport: cnt})
	seal := func(key string, tag string) ([]*commonpb.Payload, []*commonpb.Payload) {
		ps := payloads(3, tag)
		return ps, encode(t, newCodec(t, open(t, v, vault.Config{KeyName: key}), codec.Options{}), ps)
	}

	own, ownSealed := seal("temporal", "own")
	old, oldSealed := seal("temporal-old", "old")
	decode(t, newCodec(t, kr, codec.Options{}), append(ownSealed, oldSealed...), append(own, old...))

	_, otherSealed := seal("other-team", "other")
	cnt.Reset()
	_, err := newCodec(t, kr, codec.Options{}).DecodeContext(context.Background(), otherSealed)
	if !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), "other-team") {
		t.Fatalf("payload under another transit key of the mount: %v, want ErrUnknownKey naming it", err)
	}
	if n := cnt.Count("transit/decrypt/"); n != 0 {
		t.Errorf("%d decrypt calls for a refused key, want 0", n)
	}

	// Without PreviousKeys the old key is refused too.
	strict := open(t, v, vault.Config{KeyName: "temporal"})
	if _, err := newCodec(t, strict, codec.Options{}).DecodeContext(context.Background(), oldSealed); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Errorf("old key without PreviousKeys: %v, want ErrUnknownKey", err)
	}
}

// TestVaultNamespaceIsolation: one transit key without {namespace} serves
// every namespace, yet a payload sealed for payments does not open in
// sandbox (codec.ErrNamespace), and Vault is not asked.
func TestVaultNamespaceIsolation(t *testing.T) {
	t.Parallel()
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	cnt := newCounter()
	kr := open(t, v, vault.Config{KeyName: "temporal", Transport: cnt})
	c := newCodec(t, kr, codec.Options{})
	ps := payloads(2, "payments")
	sealed := encode(t, c.ForNamespace("payments"), ps)
	cnt.Reset()
	_, err := newCodec(t, kr, codec.Options{}).ForNamespace("sandbox").DecodeContext(context.Background(), sealed)
	var ne *codec.NamespaceError
	if !errors.As(err, &ne) || ne.Sealed != "payments" || ne.Decoding != "sandbox" {
		t.Fatalf("decode in sandbox: %v, want a NamespaceError", err)
	}
	if n := cnt.Count("transit/decrypt/"); n != 0 {
		t.Errorf("%d decrypt calls for a refused payload, want 0", n)
	}
	decode(t, newCodec(t, kr, codec.Options{}).ForNamespace("payments"), sealed, ps)

	// With per-namespace keys, an alias (a migrated namespace) opens the
	// old namespace's payloads: the keyring unwraps them for the namespace
	// they were sealed for, whose key it still holds.
	v.CreateKey(t, "tenant-payments")
	v.CreateKey(t, "tenant-payments.acct")
	tkr := open(t, v, vault.Config{KeyName: "tenant-{namespace}"})
	old := encode(t, newCodec(t, tkr, codec.Options{}).ForNamespace("payments"), ps)
	migrated := newCodec(t, tkr, codec.Options{NamespaceAliases: map[string][]string{"payments.acct": {"payments"}}}).ForNamespace("payments.acct")
	decode(t, migrated, old, ps)
	if _, err := newCodec(t, tkr, codec.Options{}).ForNamespace("payments.acct").DecodeContext(context.Background(), old); !errors.Is(err, codec.ErrNamespace) {
		t.Errorf("without the alias: %v, want ErrNamespace", err)
	}
}

func TestPreviousKeysAreValidated(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "a/b", "x y", ".."} {
		_, err := vault.New(context.Background(), vault.Config{Address: "http://127.0.0.1:1", Token: "t", KeyName: "k", PreviousKeys: []string{bad}})
		if err == nil || !strings.Contains(err.Error(), "previous key") {
			t.Errorf("PreviousKeys %q: %v, want a config error", bad, err)
		}
	}
}
