package vault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

const keyIDMeta = "encryption-key-id"

// counter is an http.RoundTripper that counts Vault calls by method and
// path (without /v1/).
type counter struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func newCounter() *counter {
	return &counter{base: http.DefaultTransport.(*http.Transport).Clone(), n: map[string]int{}}
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[strings.TrimPrefix(r.URL.Path, "/v1/")]++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

// Count returns the calls to paths starting with prefix.
func (c *counter) Count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for p, n := range c.n {
		if strings.HasPrefix(p, prefix) {
			total += n
		}
	}
	return total
}

func (c *counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = map[string]int{}
}

// testLogger logs to the test, so a failing test shows what the keyring
// said.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// open returns a keyring on v with the root token unless cfg says
// otherwise, closed at the end of the test.
func open(t testing.TB, v *testenv.Vault, cfg vault.Config) *vault.Keyring {
	t.Helper()
	kr, err := tryOpen(t, v, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func tryOpen(t testing.TB, v *testenv.Vault, cfg vault.Config) (*vault.Keyring, error) {
	t.Helper()
	cfg.Address = v.Addr
	if cfg.Token == "" && cfg.AppRoleRoleID == "" && cfg.KubernetesRole == "" {
		cfg.Token = v.Token
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kr, err := vault.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { kr.Close() })
	return kr, nil
}

func newCodec(t testing.TB, kr keyring.Keyring, opts codec.Options) *codec.Codec {
	t.Helper()
	c, err := codec.New(kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func payloads(n int, tag string) []*commonpb.Payload {
	ps := make([]*commonpb.Payload, n)
	for i := range ps {
		ps[i] = &commonpb.Payload{
			Metadata: map[string][]byte{"encoding": []byte("json/plain")},
			Data:     fmt.Appendf(nil, `{"tag":%q,"i":%d}`, tag, i),
		}
	}
	return ps
}

func encode(t testing.TB, c *codec.Codec, ps []*commonpb.Payload) []*commonpb.Payload {
	t.Helper()
	out, err := c.EncodeContext(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decode(t testing.TB, c *codec.Codec, sealed, want []*commonpb.Payload) {
	t.Helper()
	got, err := c.DecodeContext(context.Background(), sealed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d payloads, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("payload %d: decoded %v, want %v", i, got[i], want[i])
		}
	}
}

func keyID(p *commonpb.Payload) string { return string(p.GetMetadata()[keyIDMeta]) }

// TestVault runs the tests that can share one Vault; each uses its own
// transit keys.
func TestVault(t *testing.T) {
	v := testenv.StartVault(t)

	t.Run("payloads round-trip through the codec", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "roundtrip")
		kr := open(t, v, vault.Config{KeyName: "roundtrip"})
		c := newCodec(t, kr, codec.Options{})
		ps := payloads(20, "roundtrip")
		sealed := encode(t, c, ps)
		for i, p := range sealed {
			if got := keyID(p); got != "vault/transit/roundtrip/v1" {
				t.Fatalf("payload %d: key id %q, want vault/transit/roundtrip/v1", i, got)
			}
			if bytes.Contains(p.Data, ps[i].Data) {
				t.Fatalf("payload %d: sealed data contains the plaintext", i)
			}
		}
		// A fresh codec has no cached keys: it must ask Vault.
		decode(t, newCodec(t, kr, codec.Options{}), sealed, ps)
		if err := kr.Check(context.Background()); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})

	t.Run("old payloads decode after rotation and new ones carry v2", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "rotate")
		kr := open(t, v, vault.Config{KeyName: "rotate"})
		old := payloads(5, "before")
		sealedOld := encode(t, newCodec(t, kr, codec.Options{}), old)
		if got := v.RotateKey(t, "rotate"); got != 2 {
			t.Fatalf("latest version after rotate = %d, want 2", got)
		}
		fresh := payloads(5, "after")
		sealedNew := encode(t, newCodec(t, kr, codec.Options{}), fresh)
		if got := keyID(sealedOld[0]); got != "vault/transit/rotate/v1" {
			t.Fatalf("old key id %q", got)
		}
		if got := keyID(sealedNew[0]); got != "vault/transit/rotate/v2" {
			t.Fatalf("new key id %q, want vault/transit/rotate/v2", got)
		}
		decode(t, newCodec(t, kr, codec.Options{}), append(sealedOld, sealedNew...), append(old, fresh...))

		// Raising min_decryption_version retires v1: its payloads fail
		// with ErrUnknownKey, v2 payloads still decode.
		v.Write(t, "transit/keys/rotate/config", map[string]any{"min_decryption_version": 2})
		_, err := newCodec(t, kr, codec.Options{}).DecodeContext(context.Background(), sealedOld)
		if !errors.Is(err, keyring.ErrUnknownKey) {
			t.Fatalf("decode of v1 payload after min_decryption_version=2: %v, want ErrUnknownKey", err)
		}
		decode(t, newCodec(t, kr, codec.Options{}), sealedNew, fresh)
	})

	t.Run("many wrapped keys unwrap in one call per transit key", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "batch-a")
		v.CreateKey(t, "batch-b")
		cnt := newCounter()
		kra := open(t, v, vault.Config{KeyName: "batch-a", PreviousKeys: []string{"batch-b"}, Transport: cnt})
		krb := open(t, v, vault.Config{KeyName: "batch-b", Transport: cnt})
		var wrapped []keyring.WrappedKey
		var want [][]byte
		for i := 0; i < 60; i++ {
			kr := kra
			if i%3 == 0 {
				kr = krb
			}
			dk, err := kr.NewDataKey(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			wrapped = append(wrapped, keyring.WrappedKey{KeyID: dk.KeyID, Wrapped: dk.Wrapped})
			want = append(want, dk.Key.UnsafeBytes())
		}
		cnt.Reset()
		got, err := kra.UnwrapDataKeys(context.Background(), "", wrapped)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if !bytes.Equal(got[i].UnsafeBytes(), want[i]) {
				t.Fatalf("key %d: unwrapped key differs", i)
			}
		}
		if a, b := cnt.Count("transit/decrypt/batch-a"), cnt.Count("transit/decrypt/batch-b"); a != 1 || b != 1 {
			t.Fatalf("decrypt calls: batch-a %d, batch-b %d; want 1 each", a, b)
		}
	})

	t.Run("a policy without decrypt gives a clear permission error", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "nodecrypt")
		v.WritePolicy(t, "nodecrypt", `
path "transit/datakey/plaintext/nodecrypt" { capabilities = ["update"] }
path "transit/keys/nodecrypt" { capabilities = ["read"] }
`)
		token := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"nodecrypt"}})
		kr := open(t, v, vault.Config{KeyName: "nodecrypt", Token: token})
		c := newCodec(t, kr, codec.Options{})
		sealed := encode(t, c, payloads(3, "x"))
		_, err := newCodec(t, kr, codec.Options{}).DecodeContext(context.Background(), sealed)
		if !errors.Is(err, keyring.ErrPermission) {
			t.Fatalf("decode: %v, want ErrPermission", err)
		}
		msg := err.Error()
		for _, want := range []string{"decrypt", `"nodecrypt"`, "403", "permission denied"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not mention %q", msg, want)
			}
		}
		if strings.Contains(msg, token) {
			t.Errorf("error contains the token: %q", msg)
		}
		t.Logf("error: %v", err)
	})

	t.Run("a missing key is an unknown key", func(t *testing.T) {
		t.Parallel()
		_, err := tryOpen(t, v, vault.Config{KeyName: "does-not-exist"})
		if !errors.Is(err, keyring.ErrUnknownKey) {
			t.Fatalf("New with a missing key: %v, want ErrUnknownKey", err)
		}
		kr := open(t, v, vault.Config{KeyName: "missing-{namespace}"})
		_, err = kr.NewDataKey(context.Background(), "nobody")
		if !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), `"missing-nobody"`) {
			t.Fatalf("NewDataKey for a namespace without key: %v, want ErrUnknownKey naming missing-nobody", err)
		}
	})

	t.Run("a tampered wrapped key does not unwrap", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "tamper")
		kr := open(t, v, vault.Config{KeyName: "tamper"})
		dk, err := kr.NewDataKey(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(dk.Wrapped)
		i := len("vault:v1:") + 5
		if bad[i] == 'A' {
			bad[i] = 'B'
		} else {
			bad[i] = 'A'
		}
		cases := []struct {
			name string
			key  keyring.WrappedKey
			want error
		}{
			{"changed ciphertext", keyring.WrappedKey{KeyID: dk.KeyID, Wrapped: bad}, keyring.ErrUnwrap},
			{"version differs from the key id", keyring.WrappedKey{KeyID: "vault/transit/tamper/v2", Wrapped: dk.Wrapped}, keyring.ErrUnwrap},
			{"not a transit ciphertext", keyring.WrappedKey{KeyID: dk.KeyID, Wrapped: []byte("garbage")}, keyring.ErrUnwrap},
			{"another mount", keyring.WrappedKey{KeyID: "vault/other/tamper/v1", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
			{"malformed key id", keyring.WrappedKey{KeyID: "local/tamper", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
			{"version vault does not have", keyring.WrappedKey{KeyID: "vault/transit/tamper/v7", Wrapped: []byte("vault:v7:" + string(dk.Wrapped[len("vault:v1:"):]))}, keyring.ErrUnknownKey},
		}
		for _, tc := range cases {
			_, err := kr.UnwrapDataKeys(context.Background(), "", []keyring.WrappedKey{tc.key})
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
	})

	t.Run("each namespace has its own key and cannot unwrap another's", func(t *testing.T) {
		t.Parallel()
		for _, ns := range []string{"a", "b", "default"} {
			v.CreateKey(t, "tenant-"+ns)
		}
		kr := open(t, v, vault.Config{KeyName: "tenant-{namespace}"})
		c := newCodec(t, kr, codec.Options{})
		psA, psB, psD := payloads(3, "a"), payloads(3, "b"), payloads(3, "default")
		sealedA := encode(t, c.ForNamespace("a"), psA)
		sealedB := encode(t, c.ForNamespace("b"), psB)
		sealedD := encode(t, c, psD)
		for _, tc := range []struct {
			sealed []*commonpb.Payload
			want   string
		}{
			{sealedA, "vault/transit/tenant-a/v1"},
			{sealedB, "vault/transit/tenant-b/v1"},
			{sealedD, "vault/transit/tenant-default/v1"},
		} {
			if got := keyID(tc.sealed[0]); got != tc.want {
				t.Errorf("key id %q, want %q", got, tc.want)
			}
		}
		decode(t, c.ForNamespace("a"), sealedA, psA)
		decode(t, c.ForNamespace("b"), sealedB, psB)
		decode(t, c, sealedD, psD)

		// B's payloads through A (fresh codec: nothing cached) are refused
		// by the codec (they are sealed for b) before Vault is asked, and the
		// keyring refuses b's key for namespace a on its own too.
		_, err := newCodec(t, kr, codec.Options{Namespace: "a"}).DecodeContext(context.Background(), sealedB)
		if !errors.Is(err, codec.ErrNamespace) {
			t.Fatalf("decode of b's payload as namespace a: %v, want ErrNamespace", err)
		}
		if _, err := kr.UnwrapDataKeys(context.Background(), "a", []keyring.WrappedKey{{KeyID: keyID(sealedB[0]), Wrapped: sealedB[0].Metadata["encryption-wrapped-key"]}}); !errors.Is(err, keyring.ErrPermission) {
			t.Fatalf("unwrap of b's key for namespace a: %v, want ErrPermission", err)
		}
		// Empty namespace means "default".
		if _, err := kr.UnwrapDataKeys(context.Background(), "", []keyring.WrappedKey{{KeyID: keyID(sealedA[0]), Wrapped: sealedA[0].Metadata["encryption-wrapped-key"]}}); !errors.Is(err, keyring.ErrPermission) {
			t.Fatalf("unwrap of a's key with no namespace: %v, want ErrPermission", err)
		}
		if _, err := kr.NewDataKey(context.Background(), "bad/name"); !errors.Is(err, keyring.ErrPermission) {
			t.Fatalf("NewDataKey for a namespace that is no key name: %v, want ErrPermission", err)
		}
	})

	t.Run("10000 payloads cost a handful of transit calls", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "count")
		cnt := newCounter()
		kr := open(t, v, vault.Config{KeyName: "count", Transport: cnt})
		cnt.Reset()
		const total, batch = 10000, 100
		ps := payloads(total, "count")
		enc := newCodec(t, kr, codec.Options{})
		var sealed []*commonpb.Payload
		for lo := 0; lo < total; lo += batch {
			sealed = append(sealed, encode(t, enc, ps[lo:lo+batch])...)
		}
		datakeys := cnt.Count("transit/datakey/")
		// Decoding with a fresh codec (a codec server that did not encode):
		// the first batch asks Vault, the rest hit the DEK cache.
		dec := newCodec(t, kr, codec.Options{})
		for lo := 0; lo < total; lo += batch {
			decode(t, dec, sealed[lo:lo+batch], ps[lo:lo+batch])
		}
		decrypts := cnt.Count("transit/decrypt/")
		// And all 10000 in one decode request.
		decode(t, newCodec(t, kr, codec.Options{}), sealed, ps)
		oneRequest := cnt.Count("transit/decrypt/") - decrypts
		all := cnt.Count("")
		t.Logf("vault calls for %d payloads: encode (batches of %d) %d datakey; decode (batches of %d) %d decrypt; decode in one request %d decrypt; all vault calls %d",
			total, batch, datakeys, batch, decrypts, oneRequest, all)
		if datakeys != 1 || decrypts != 1 || oneRequest != 1 || all != 3 {
			t.Fatalf("vault calls: datakey %d, decrypt %d, one-request decrypt %d, all %d; want 1, 1, 1, 3", datakeys, decrypts, oneRequest, all)
		}
	})

	t.Run("a renewable token is renewed past its TTL", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "renew")
		v.WritePolicy(t, "renew", testenv.TransitPolicy("renew"))
		token := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"renew"}, TTL: "6s", ExplicitMaxTTL: "1h", Renewable: true})
		cnt := newCounter()
		kr := open(t, v, vault.Config{KeyName: "renew", Token: token, Transport: cnt})
		expiresUnrenewed := time.Now().Add(6 * time.Second)
		c := newCodec(t, kr, codec.Options{DataKeyMaxUses: 1})
		deadline := time.Now().Add(60 * time.Second)
		for cnt.Count("auth/token/renew-self") < 3 || time.Now().Before(expiresUnrenewed.Add(6*time.Second)) {
			if time.Now().After(deadline) {
				t.Fatalf("after 60s: %d renewals", cnt.Count("auth/token/renew-self"))
			}
			// Each encode asks Vault for a data key (DataKeyMaxUses 1).
			encode(t, c, payloads(1, "renew"))
			time.Sleep(100 * time.Millisecond) // pacing the calls, not synchronisation
		}
		t.Logf("renew-self calls: %d", cnt.Count("auth/token/renew-self"))
	})

	t.Run("an expired token gives a clear permission error", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "expire")
		v.WritePolicy(t, "expire", testenv.TransitPolicy("expire"))
		token := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"expire"}, TTL: "2s", Renewable: false})
		kr := open(t, v, vault.Config{KeyName: "expire", Token: token})
		deadline := time.Now().Add(30 * time.Second)
		var err error
		for {
			if _, err = kr.NewDataKey(context.Background(), ""); err != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond) // pacing the calls, not synchronisation
		}
		if !errors.Is(err, keyring.ErrPermission) || !strings.Contains(err.Error(), "invalid token") {
			t.Fatalf("NewDataKey with an expired token: %v, want ErrPermission mentioning the invalid token", err)
		}
		if strings.Contains(err.Error(), token) {
			t.Fatalf("error contains the token")
		}
	})

	t.Run("AppRole logs in again after the token's max TTL and after revocation", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "approle")
		v.WritePolicy(t, "approle", testenv.TransitPolicy("approle"))
		roleID, secretID := v.EnableAppRole(t, "codec", testenv.AppRoleOptions{Policies: []string{"approle"}, TokenTTL: "4s", TokenMaxTTL: "8s"})
		cnt := newCounter()
		kr := open(t, v, vault.Config{KeyName: "approle", AppRoleRoleID: roleID, AppRoleSecretID: secretID, Transport: cnt})
		c := newCodec(t, kr, codec.Options{DataKeyMaxUses: 1})
		start := time.Now()
		deadline := start.Add(80 * time.Second)
		for cnt.Count("auth/approle/login") < 3 || time.Since(start) < 18*time.Second {
			if time.Now().After(deadline) {
				t.Fatalf("after 80s: %d logins", cnt.Count("auth/approle/login"))
			}
			encode(t, c, payloads(1, "approle"))
			time.Sleep(100 * time.Millisecond) // pacing the calls, not synchronisation
		}
		t.Logf("approle logins: %d, renewals: %d in %s", cnt.Count("auth/approle/login"), cnt.Count("auth/token/renew-self"), time.Since(start).Round(time.Second))

		// Revoke every token the role handed out: the next call is refused
		// for an invalid token, logs in again and succeeds.
		before := cnt.Count("auth/approle/login")
		v.Write(t, "sys/leases/revoke-prefix/auth/approle/login", nil)
		encode(t, c, payloads(1, "after revocation"))
		if got := cnt.Count("auth/approle/login"); got <= before {
			t.Fatalf("no login after revocation (%d logins)", got)
		}
	})

	t.Run("a wrong AppRole secret ID is a permission error", func(t *testing.T) {
		t.Parallel()
		roleID, _ := v.EnableAppRole(t, "wrong-secret", testenv.AppRoleOptions{})
		_, err := tryOpen(t, v, vault.Config{KeyName: "roundtrip", AppRoleRoleID: roleID, AppRoleSecretID: "not-the-secret-id"})
		if !errors.Is(err, keyring.ErrPermission) {
			t.Fatalf("New: %v, want ErrPermission", err)
		}
		if strings.Contains(err.Error(), "not-the-secret-id") {
			t.Fatalf("error contains the secret ID: %v", err)
		}
	})
}

// TestVaultSealedAndDown takes Vault away mid-run: decode keeps working from
// the codec's cache, encode until its data key's use bound runs out. (The
// age bound with Vault down is codec's
// TestDataKeyMaxAgeEndsSealingWhileVaultIsDown: it moves the codec's clock.)
func TestVaultSealedAndDown(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "outage")
	kr := open(t, v, vault.Config{KeyName: "outage", Timeout: time.Second, MaxRetries: 1, RetryWait: 10 * time.Millisecond})

	byUses := newCodec(t, kr, codec.Options{DataKeyMaxUses: 5, DataKeyMaxAge: time.Hour})

	ps := payloads(3, "outage")
	sealedUses := encode(t, byUses, ps) // 3 of 5 uses
	decode(t, byUses, sealedUses, ps)   // caches the data key for decoding
	uncached := encode(t, newCodec(t, kr, codec.Options{}), ps)

	check := func(stage string) {
		t.Helper()
		decode(t, byUses, sealedUses, ps)
		if _, err := newCodec(t, kr, codec.Options{}).DecodeContext(context.Background(), uncached); !errors.Is(err, keyring.ErrUnavailable) {
			t.Fatalf("%s: decode of an uncached key: %v, want ErrUnavailable", stage, err)
		}
		if err := kr.Check(context.Background()); !errors.Is(err, keyring.ErrUnavailable) {
			t.Fatalf("%s: Check: %v, want ErrUnavailable", stage, err)
		}
	}

	v.Seal(t)
	check("sealed")
	_, err := kr.NewDataKey(context.Background(), "")
	if !errors.Is(err, keyring.ErrUnavailable) || !strings.Contains(err.Error(), "sealed") || !strings.Contains(err.Error(), "datakey") {
		t.Fatalf("NewDataKey on a sealed vault: %v, want ErrUnavailable naming datakey and sealed", err)
	}
	t.Logf("sealed: %v", err)

	v.Stop()
	check("stopped")
	encode(t, byUses, payloads(2, "uses 4 and 5"))
	_, err = byUses.EncodeContext(context.Background(), payloads(1, "use 6"))
	if !errors.Is(err, keyring.ErrUnavailable) || !strings.Contains(err.Error(), "datakey") {
		t.Fatalf("encode past DataKeyMaxUses with vault down: %v, want ErrUnavailable", err)
	}
	t.Logf("stopped: %v", err)
	// Decode still works from the cache.
	decode(t, byUses, sealedUses, ps)
}

// TestVaultTLS talks to Vault over HTTPS, trusting its CA through
// Config.CACert.
func TestVaultTLS(t *testing.T) {
	t.Parallel()
	v := testenv.StartVault(t, testenv.VaultTLS())
	v.CreateKey(t, "tls")
	kr := open(t, v, vault.Config{KeyName: "tls", CACert: v.CACert})
	c := newCodec(t, kr, codec.Options{})
	ps := payloads(3, "tls")
	decode(t, newCodec(t, kr, codec.Options{}), encode(t, c, ps), ps)

	_, err := tryOpen(t, v, vault.Config{KeyName: "tls", MaxRetries: -1})
	if !errors.Is(err, keyring.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("New without the CA: %v, want ErrUnavailable about the certificate", err)
	}
}
