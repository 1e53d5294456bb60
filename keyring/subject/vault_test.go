package subject_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// countingTransport counts the requests that reach Vault.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// vaultStore builds the store the way the server does: on the
// connection of a Vault keyring (vault.Keyring.APIClient), whose requests
// rt (if set) sees.
func vaultStore(t testing.TB, v *testenv.Vault, rt http.RoundTripper) *subject.Vault {
	return vaultStoreWithToken(t, v, rt, v.Token)
}

func vaultStoreWithToken(t testing.TB, v *testenv.Vault, rt http.RoundTripper, token string) *subject.Vault {
	t.Helper()
	kr, err := vault.New(context.Background(), vault.Config{Address: v.Addr, Token: token, KeyName: "temporal", Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	s, err := subject.NewVault(subject.VaultConfig{Client: kr.APIClient()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVaultStore(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	t.Run("store", func(t *testing.T) {
		exerciseStore(t, func(t *testing.T) subject.Store { return vaultStore(t, v, nil) })
	})
	t.Run("race", func(t *testing.T) { exerciseRace(t, vaultStore(t, v, nil)) })
	t.Run("errors", func(t *testing.T) {
		s := vaultStore(t, v, nil)
		ctx := context.Background()
		dk, err := s.NewDataKey(ctx, "customer-errors")
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.NewDataKey(ctx, "customer-other")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			w    keyring.WrappedKey
			want error
		}{
			{"a tampered wrapped key", keyring.WrappedKey{KeyID: dk.KeyID, Wrapped: []byte(string(dk.Wrapped[:len(dk.Wrapped)-4]) + "AAA=")}, keyring.ErrUnwrap},
			{"another subject's wrapped key under this subject's ID", keyring.WrappedKey{KeyID: dk.KeyID, Wrapped: other.Wrapped}, keyring.ErrUnwrap},
			{"a subject that never had a key", keyring.WrappedKey{KeyID: "subject/vault/customer-never/00", Wrapped: dk.Wrapped}, keyring.ErrErased},
			{"a malformed key ID", keyring.WrappedKey{KeyID: "subject/vault/customer-errors", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
		} {
			if _, err := s.UnwrapDataKeys(ctx, []keyring.WrappedKey{tc.w}); !errors.Is(err, tc.want) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
			}
		}
	})
	t.Run("the documented policies: users cannot shred, the shredder can", func(t *testing.T) {
		// The policies of docs/ERASURE.md.
		v.WritePolicy(t, "subject-user", testenv.TransitPolicy("temporal")+`
path "transit/keys/subject-*" {
  capabilities       = ["create", "update"]
  allowed_parameters = { "type" = ["aes256-gcm96"] }
}
path "transit/datakey/plaintext/subject-*" { capabilities = ["update"] }
path "transit/decrypt/subject-*"           { capabilities = ["update"] }
path "transit/hmac/subject-*"              { capabilities = ["update"] }
`)
		v.WritePolicy(t, "subject-shredder", `path "transit/keys/temporal" { capabilities = ["read"] }
path "transit/keys/subject-*"              { capabilities = ["read", "update", "delete"] }
path "transit/hmac/subject-*"              { capabilities = ["update"] }
`)
		ctx := context.Background()
		userToken := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"subject-user"}})
		user := vaultStoreWithToken(t, v, nil, userToken)
		dk, err := user.NewDataKey(ctx, "customer-policy")
		if err != nil {
			t.Fatalf("a subject-user creates and uses a subject key: %v", err)
		}
		if _, err := user.UnwrapDataKeys(ctx, []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}}); err != nil {
			t.Fatalf("a subject-user unwraps: %v", err)
		}
		if _, err := user.Shred(ctx, "customer-policy"); !errors.Is(err, keyring.ErrPermission) {
			t.Fatalf("a subject-user shreds: err %v, want ErrPermission", err)
		}
		// Nor destroy key versions (trim, after raising
		// min_decryption_version: an unaudited shred), nor make the key
		// exportable or backed up in plaintext (a copy that outlives a
		// shred), nor create a subject key exportable from the start.
		for _, tc := range []struct {
			path string
			body map[string]any
		}{
			{"transit/keys/subject-customer-policy/config", map[string]any{"min_decryption_version": 1}},
			{"transit/keys/subject-customer-policy/config", map[string]any{"exportable": true}},
			{"transit/keys/subject-customer-policy/config", map[string]any{"allow_plaintext_backup": true}},
			{"transit/keys/subject-customer-policy/config", map[string]any{"deletion_allowed": true}},
			{"transit/keys/subject-customer-policy/trim", map[string]any{"min_available_version": 1}},
			{"transit/keys/subject-customer-exportable", map[string]any{"type": "aes256-gcm96", "exportable": true}},
		} {
			if status, _, err := v.Request("POST", tc.path, userToken, tc.body); err != nil || status != http.StatusForbidden {
				t.Errorf("a subject-user writes %s %v: status %d (%v), want 403", tc.path, tc.body, status, err)
			}
		}
		// The race's loser writes the key again: still allowed.
		if status, _, err := v.Request("POST", "transit/keys/subject-customer-policy", userToken, map[string]any{"type": "aes256-gcm96"}); err != nil || status/100 != 2 {
			t.Errorf("a subject-user creates an existing key again: status %d (%v), want 2xx", status, err)
		}
		shredder := vaultStoreWithToken(t, v, nil, v.CreateToken(t, testenv.TokenOptions{Policies: []string{"subject-shredder"}}))
		if existed, err := shredder.Shred(ctx, "customer-policy"); err != nil || !existed {
			t.Fatalf("the shredder shreds: existed %v, err %v", existed, err)
		}
		if _, err := user.UnwrapDataKeys(ctx, []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}}); !errors.Is(err, keyring.ErrErased) {
			t.Fatalf("after the shred: err %v, want ErrErased", err)
		}
	})
	t.Run("shred deletes the transit key", func(t *testing.T) {
		s := vaultStore(t, v, nil)
		if _, err := s.NewDataKey(context.Background(), "customer-gone"); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := v.Request("GET", "transit/keys/subject-customer-gone", v.Token, nil); status != 200 {
			t.Fatalf("key not created: status %d", status)
		}
		if _, err := s.Shred(context.Background(), "customer-gone"); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := v.Request("GET", "transit/keys/subject-customer-gone", v.Token, nil); status != 404 {
			t.Fatalf("key still in Vault after shred: status %d", status)
		}
	})
}

// TestVaultCallsPer10000Payloads measures the Vault calls of sealing and
// opening 10,000 payloads of 100 subjects (100 per subject): the numbers
// docs/ERASURE.md quotes.
func TestVaultCallsPer10000Payloads(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	rt := &countingTransport{}
	kr, err := subject.New(keyringtest.New(), vaultStore(t, v, rt), subject.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt.n.Store(0) // vault.New's own calls
	c, _ := codec.New(kr, codec.Options{Subject: customerOf})
	var sealed []*commonpb.Payload
	start := time.Now()
	for s := range 100 {
		for range 100 {
			sealed = append(sealed, encodeFor(t, c, fmt.Sprintf("onboard-customer-%d", s), plain("x"))...)
		}
	}
	sealCalls, sealTime := rt.n.Load(), time.Since(start)
	rt.n.Store(0)
	fresh, _ := codec.New(kr, codec.Options{})
	start = time.Now()
	if _, err := fresh.Decode(sealed); err != nil {
		t.Fatal(err)
	}
	openCalls, openTime := rt.n.Load(), time.Since(start)
	rt.n.Store(0)
	if _, err := fresh.Decode(sealed); err != nil {
		t.Fatal(err)
	}
	cachedCalls := rt.n.Load()
	t.Logf("10,000 payloads over 100 new subjects: seal %d Vault calls (%v), open cold %d calls (%v), open cached %d calls",
		sealCalls, sealTime, openCalls, openTime, cachedCalls)
	// Per new subject: read (missing), create, read (birth), datakey.
	if sealCalls != 400 {
		t.Errorf("seal: %d Vault calls, want 400 (4 per new subject)", sealCalls)
	}
	if openCalls != 100 {
		t.Errorf("open: %d Vault calls, want 100 (one batched decrypt per subject)", openCalls)
	}
	if cachedCalls != 0 {
		t.Errorf("open again: %d Vault calls, want 0 (decode cache)", cachedCalls)
	}
}
