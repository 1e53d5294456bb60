package subject_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
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
	s, err := subject.NewVault(context.Background(), subject.VaultConfig{Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// initVaultStore creates the store (codec-server keys init-subject-store)
// with the root token.
func initVaultStore(t testing.TB, v *testenv.Vault) {
	t.Helper()
	kr, err := vault.New(context.Background(), vault.Config{Address: v.Addr, Token: v.Token, KeyName: "temporal"})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	if _, err := subject.InitVault(context.Background(), subject.VaultConfig{Keyring: kr}); err != nil {
		t.Fatal(err)
	}
}

// vaultHandle returns the handle of subject in namespace "default".
func vaultHandle(t testing.TB, s subject.Store, subj string) string {
	t.Helper()
	h, err := s.Handle(context.Background(), "default", subj)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVaultStore(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	t.Run("not initialised", func(t *testing.T) {
		kr, err := vault.New(context.Background(), vault.Config{Address: v.Addr, Token: v.Token, KeyName: "temporal"})
		if err != nil {
			t.Fatal(err)
		}
		defer kr.Close()
		if _, err := subject.NewVault(context.Background(), subject.VaultConfig{Keyring: kr}); !errors.Is(err, subject.ErrNotInitialised) {
			t.Fatalf("a mount without a store: err %v, want ErrNotInitialised", err)
		}
	})
	initVaultStore(t, v)
	t.Run("store", func(t *testing.T) {
		exerciseStore(t, func(t *testing.T) subject.Store { return vaultStore(t, v, nil) })
	})
	t.Run("race", func(t *testing.T) { exerciseRace(t, vaultStore(t, v, nil)) })
	t.Run("errors", func(t *testing.T) {
		s := vaultStore(t, v, nil)
		ctx := context.Background()
		dk, err := s.NewDataKey(ctx, "default", vaultHandle(t, s, "customer-errors"))
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.NewDataKey(ctx, "default", vaultHandle(t, s, "customer-other"))
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
			{"a subject that never had a key", keyring.WrappedKey{KeyID: "subject/vault/" + vaultHandle(t, s, "customer-never") + "/0011223344556677", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
			{"a malformed key ID", keyring.WrappedKey{KeyID: "subject/vault/" + vaultHandle(t, s, "customer-errors"), Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
		} {
			if _, err := s.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{tc.w}); !errors.Is(err, tc.want) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
			}
		}
	})
	t.Run("the documented policies: users cannot shred, the shredder can", func(t *testing.T) {
		// The policies of docs/ERASURE.md.
		v.WritePolicy(t, "subject-user", testenv.TransitPolicy("temporal")+subjectUserPolicy)
		v.WritePolicy(t, "subject-shredder", `path "transit/keys/temporal" { capabilities = ["read"] }
`+subjectShredderPolicy)
		ctx := context.Background()
		userToken := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"subject-user"}})
		user := vaultStoreWithToken(t, v, nil, userToken)
		h := vaultHandle(t, user, "customer-policy")
		dk, err := user.NewDataKey(ctx, "default", h)
		if err != nil {
			t.Fatalf("a subject-user creates and uses a subject key: %v", err)
		}
		if _, err := user.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}}); err != nil {
			t.Fatalf("a subject-user unwraps: %v", err)
		}
		if _, err := user.Shred(ctx, "default", h); !errors.Is(err, keyring.ErrPermission) {
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
			{"transit/keys/subject-" + h + "/config", map[string]any{"min_decryption_version": 1}},
			{"transit/keys/subject-" + h + "/config", map[string]any{"exportable": true}},
			{"transit/keys/subject-" + h + "/config", map[string]any{"allow_plaintext_backup": true}},
			{"transit/keys/subject-" + h + "/config", map[string]any{"deletion_allowed": true}},
			{"transit/keys/subject-" + h + "/trim", map[string]any{"min_available_version": 1}},
			{"transit/keys/subject-customer-exportable", map[string]any{"type": "aes256-gcm96", "exportable": true}},
		} {
			if status, _, err := v.Request("POST", tc.path, userToken, tc.body); err != nil || status != http.StatusForbidden {
				t.Errorf("a subject-user writes %s %v: status %d (%v), want 403", tc.path, tc.body, status, err)
			}
		}
		// The race's loser writes the key again: still allowed.
		if status, _, err := v.Request("POST", "transit/keys/subject-"+h, userToken, map[string]any{"type": "aes256-gcm96"}); err != nil || status/100 != 2 {
			t.Errorf("a subject-user creates an existing key again: status %d (%v), want 2xx", status, err)
		}
		shredder := vaultStoreWithToken(t, v, nil, v.CreateToken(t, testenv.TokenOptions{Policies: []string{"subject-shredder"}}))
		if existed, err := shredder.Shred(ctx, "default", h); err != nil || !existed {
			t.Fatalf("the shredder shreds: existed %v, err %v", existed, err)
		}
		if _, err := user.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}}); !errors.Is(err, keyring.ErrErased) {
			t.Fatalf("after the shred: err %v, want ErrErased", err)
		}
		if _, err := user.NewDataKey(ctx, "default", h); !errors.Is(err, keyring.ErrErased) {
			t.Fatalf("a subject-user seals after the shred: err %v, want ErrErased", err)
		}
		if _, err := user.Readmit(ctx, "default", h); !errors.Is(err, keyring.ErrPermission) {
			t.Fatalf("a subject-user re-admits: err %v, want ErrPermission", err)
		}
		if was, err := shredder.Readmit(ctx, "default", h); err != nil || !was {
			t.Fatalf("the shredder re-admits: was %v, err %v", was, err)
		}
		if _, err := user.NewDataKey(ctx, "default", h); err != nil {
			t.Fatalf("a subject-user seals after the re-admission: %v", err)
		}
	})
	t.Run("shred deletes the transit key", func(t *testing.T) {
		s := vaultStore(t, v, nil)
		h := vaultHandle(t, s, "customer-gone")
		if _, err := s.NewDataKey(context.Background(), "default", h); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := v.Request("GET", "transit/keys/subject-"+h, v.Token, nil); status != 200 {
			t.Fatalf("key not created: status %d", status)
		}
		if _, err := s.Shred(context.Background(), "default", h); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := v.Request("GET", "transit/keys/subject-"+h, v.Token, nil); status != 404 {
			t.Fatalf("key still in Vault after shred: status %d", status)
		}
	})
}

// The Vault policies of docs/ERASURE.md: workers and codec servers
// (subject-user), the operator who shreds and re-admits
// (subject-shredder).
const (
	subjectUserPolicy = `
path "transit/keys/subject-*" {
  capabilities       = ["create", "update"]
  allowed_parameters = { "type" = ["aes256-gcm96"] }
}
path "transit/datakey/plaintext/subject-*" { capabilities = ["update"] }
path "transit/decrypt/subject-*"           { capabilities = ["update"] }
path "transit/hmac/subject-*"              { capabilities = ["update"] }
path "transit/hmac/tomb-subject-*"         { capabilities = ["update"] }
`
	subjectShredderPolicy = `
path "transit/keys/subject-*"              { capabilities = ["create", "read", "update", "delete"] }
path "transit/hmac/subject-*"              { capabilities = ["update"] }
path "transit/keys/tomb-subject-*"         { capabilities = ["create", "read", "update", "delete"] }
path "transit/hmac/tomb-subject-*"         { capabilities = ["update"] }
`
)

// TestVaultWorkersCannotForgeErasures: a token with the documented
// subject-user policy (every worker's) cannot create a tombstone, so it
// cannot make a key ID that never existed show as erased (in place of
// failing as unknown), nor block a subject.
func TestVaultWorkersCannotForgeErasures(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	initVaultStore(t, v)
	v.WritePolicy(t, "subject-user", testenv.TransitPolicy("temporal")+subjectUserPolicy)
	ctx := context.Background()
	userToken := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"subject-user"}})
	user := vaultStoreWithToken(t, v, nil, userToken)
	h := vaultHandle(t, user, "customer-never-sealed")
	const gen = "0011223344556677"
	// Every name a worker could give a made-up tombstone of h: the
	// subject key prefix with the tombstones' suffixes (the names before
	// tombstones got their own prefix), and the tombstones' own names.
	for _, name := range []string{
		"subject-" + h + "-erased-" + gen, "subject-" + h + "-blocked",
		"tomb-subject-" + h + "-erased-" + gen, "tomb-subject-" + h + "-blocked",
	} {
		status, _, err := v.Request("POST", "transit/keys/"+name, userToken, map[string]any{"type": "aes256-gcm96"})
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, "tomb-") && status != http.StatusForbidden {
			t.Errorf("a subject-user creates the tombstone %s: status %d, want 403", name, status)
		}
	}
	forged := keyring.WrappedKey{KeyID: "subject/vault/" + h + "/" + gen, Wrapped: []byte("vault:v1:AAAA")}
	if _, err := user.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{forged}); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Errorf("a key ID that never existed, after the worker's tombstones: err %v, want ErrUnknownKey", err)
	}
	if _, err := user.NewDataKey(ctx, "default", h); err != nil {
		t.Errorf("a seal after the worker's tombstones: %v, want none (only the shredder blocks)", err)
	}
}

// TestVaultCallsPer10000Payloads measures the Vault calls of sealing and
// opening 10,000 payloads of 100 subjects (100 per subject): the numbers
// docs/ERASURE.md quotes.
func TestVaultCallsPer10000Payloads(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	initVaultStore(t, v)
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
	// A new data key for each known subject (a codec with an empty seal
	// cache, as after DataKeyMaxAge/SubjectKeyMaxAge or in another
	// process; the handles are cached).
	rt.n.Store(0)
	again, _ := codec.New(kr, codec.Options{Subject: customerOf})
	for s := range 100 {
		encodeFor(t, again, fmt.Sprintf("onboard-customer-%d", s), plain("x"))
	}
	refreshCalls := rt.n.Load()
	t.Logf("10,000 payloads over 100 new subjects: seal %d Vault calls (%v), open cold %d calls (%v), open cached %d calls; a new data key for each of the 100 known subjects: %d calls",
		sealCalls, sealTime, openCalls, openTime, cachedCalls, refreshCalls)
	// Per new subject: handle, fingerprint (missing), tombstone check,
	// create, fingerprint, datakey, tombstone check again (a shred
	// meanwhile, or one that did not get to delete the key).
	if sealCalls != 700 {
		t.Errorf("seal: %d Vault calls, want 700 (7 per new subject)", sealCalls)
	}
	// Per known subject: fingerprint, datakey, tombstone check.
	if refreshCalls != 300 {
		t.Errorf("new data keys of known subjects: %d Vault calls, want 300 (3 per subject)", refreshCalls)
	}
	if openCalls != 100 {
		t.Errorf("open: %d Vault calls, want 100 (one batched decrypt per subject)", openCalls)
	}
	if cachedCalls != 0 {
		t.Errorf("open again: %d Vault calls, want 0 (decode cache)", cachedCalls)
	}
}

// TestVaultForgedKeyIDsCostAFewCalls: one unwrap of 1,000 key IDs naming
// handles that never had a key fails as unknown after a few Vault calls,
// not one decrypt per handle.
func TestVaultForgedKeyIDsCostAFewCalls(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	initVaultStore(t, v)
	rt := &countingTransport{}
	s := vaultStore(t, v, rt)
	forged := make([]keyring.WrappedKey, 1000)
	for i := range forged {
		forged[i] = keyring.WrappedKey{KeyID: fmt.Sprintf("subject/vault/%032x/%016x", i, i), Wrapped: []byte("vault:v1:AAAA")}
	}
	rt.n.Store(0)
	if _, err := s.UnwrapDataKeys(context.Background(), "default", forged); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("forged key IDs: %v, want ErrUnknownKey", err)
	}
	// Up to Parallel decrypts in flight when the first fails, and the
	// two lookups (key, tombstone) that explain each failure.
	if n := rt.n.Load(); n > 3*subject.DefaultVaultParallel+3 {
		t.Errorf("%d Vault calls for 1,000 forged key IDs, want at most %d", n, 3*subject.DefaultVaultParallel+3)
	}
}

// TestVaultPerNamespacePolicies: with --subject-vault-prefix
// subject-{namespace}- each namespace's subject keys are transit keys
// named subject-<namespace>-<handle>, so a Vault policy per namespace
// covers them: a token for orders seals and opens orders' subjects and is
// refused billing's.
func TestVaultPerNamespacePolicies(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	ctx := context.Background()
	open := func(token string) *subject.Vault {
		t.Helper()
		kr, err := vault.New(ctx, vault.Config{Address: v.Addr, Token: token, KeyName: "temporal"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kr.Close() })
		s, err := subject.NewVault(ctx, subject.VaultConfig{Keyring: kr, KeyPrefix: "subject-{namespace}-"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rootKR, err := vault.New(ctx, vault.Config{Address: v.Addr, Token: v.Token, KeyName: "temporal"})
	if err != nil {
		t.Fatal(err)
	}
	defer rootKR.Close()
	if _, err := subject.InitVault(ctx, subject.VaultConfig{Keyring: rootKR, KeyPrefix: "subject-{namespace}-"}); err != nil {
		t.Fatal(err)
	}
	v.WritePolicy(t, "orders-subjects", testenv.TransitPolicy("temporal")+`
path "transit/hmac/subject-store"                 { capabilities = ["update"] }
path "transit/keys/subject-orders-*" {
  capabilities       = ["create", "update"]
  allowed_parameters = { "type" = ["aes256-gcm96"] }
}
path "transit/datakey/plaintext/subject-orders-*" { capabilities = ["update"] }
path "transit/decrypt/subject-orders-*"           { capabilities = ["update"] }
path "transit/hmac/subject-orders-*"              { capabilities = ["update"] }
path "transit/hmac/tomb-subject-orders-*"         { capabilities = ["update"] }
`)
	root := open(v.Token)
	orders := open(v.CreateToken(t, testenv.TokenOptions{Policies: []string{"orders-subjects"}}))
	kr, _ := subject.New(keyringtest.New(), orders, subject.Options{})
	rootKeys, _ := subject.New(keyringtest.New(), root, subject.Options{})

	dk, err := kr.NewSubjectDataKey(ctx, "orders", "ada.smith@example.com")
	if err != nil {
		t.Fatalf("the orders token seals in orders: %v", err)
	}
	if _, err := kr.UnwrapDataKeys(ctx, "orders", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}}); err != nil {
		t.Fatalf("the orders token opens in orders: %v", err)
	}
	h, _ := kr.Handle(ctx, "orders", "ada.smith@example.com")
	if status, _, _ := v.Request("GET", "transit/keys/subject-orders-"+h, v.Token, nil); status != 200 {
		t.Fatalf("no transit key subject-orders-%s: status %d", h, status)
	}
	billing, err := rootKeys.NewSubjectDataKey(ctx, "billing", "ada.smith@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.NewSubjectDataKey(ctx, "billing", "ada.smith@example.com"); !errors.Is(err, keyring.ErrPermission) {
		t.Errorf("the orders token seals in billing: %v, want ErrPermission", err)
	}
	if _, err := kr.UnwrapDataKeys(ctx, "billing", []keyring.WrappedKey{{KeyID: billing.KeyID, Wrapped: billing.Wrapped}}); !errors.Is(err, keyring.ErrPermission) {
		t.Errorf("the orders token opens billing's subject key: %v, want ErrPermission", err)
	}
}
