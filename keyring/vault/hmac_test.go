package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// TestVaultIndexMACs checks the blind-index MACs of transit/hmac against a
// real Vault.
func TestVaultIndexMACs(t *testing.T) {
	v := testenv.StartVault(t)
	ctx := context.Background()
	value := []byte("ada@example.com")

	t.Run("a MAC is transit's HMAC of the index context and the value", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "idx-direct")
		kr := open(t, v, vault.Config{KeyName: "idx-direct"})
		used, macs, err := kr.IndexMACs(ctx, "default", "email", "", [][]byte{value})
		if err != nil {
			t.Fatal(err)
		}
		ictx, _ := keyring.IndexContext("default", "email")
		direct := v.Write(t, "transit/hmac/idx-direct/sha2-256", map[string]any{"input": base64.StdEncoding.EncodeToString(append(ictx, value...))})
		want := fmt.Sprintf("vault:%s:%s", used, base64.StdEncoding.EncodeToString(macs[0]))
		if used != "v1" || direct["hmac"] != want {
			t.Fatalf("keyring: %s; transit/hmac: %v", want, direct["hmac"])
		}
	})

	t.Run("MACs differ per field and per namespace key", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "idx-ns-a")
		v.CreateKey(t, "idx-ns-b")
		kr := open(t, v, vault.Config{KeyName: "idx-ns-{namespace}"})
		mac := func(ns, field string) []byte {
			t.Helper()
			_, macs, err := kr.IndexMACs(ctx, ns, field, "", [][]byte{value})
			if err != nil {
				t.Fatal(err)
			}
			return macs[0]
		}
		base := mac("a", "email")
		if !bytes.Equal(base, mac("a", "email")) {
			t.Fatal("not deterministic")
		}
		if bytes.Equal(base, mac("a", "name")) || bytes.Equal(base, mac("b", "email")) {
			t.Fatal("another field or namespace gives the same MAC")
		}
	})

	t.Run("1,000 values per call and versions newest first after rotation", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "idx-rotate")
		calls := newCounter()
		kr := open(t, v, vault.Config{KeyName: "idx-rotate", Transport: calls})
		inputs := make([][]byte, 2500)
		for i := range inputs {
			inputs[i] = fmt.Appendf(nil, "customer-%d@example.com", i)
		}
		calls.Reset()
		used, before, err := kr.IndexMACs(ctx, "default", "email", "", inputs)
		if err != nil {
			t.Fatal(err)
		}
		if n := calls.Count("transit/hmac/"); used != "v1" || n != 3 {
			t.Fatalf("2,500 values: version %s in %d calls, want v1 in 3", used, n)
		}
		v.RotateKey(t, "idx-rotate")
		versions, err := kr.IndexKeyVersions(ctx, "default")
		if err != nil || strings.Join(versions, ",") != "v2,v1" {
			t.Fatalf("versions = %v, %v; want v2,v1", versions, err)
		}
		used, after, err := kr.IndexMACs(ctx, "default", "email", "", inputs[:1])
		if err != nil || used != "v2" || bytes.Equal(after[0], before[0]) {
			t.Fatalf("after rotation: %s %v; want v2 and a new MAC", used, err)
		}
		used, old, err := kr.IndexMACs(ctx, "default", "email", "v1", inputs[:1])
		if err != nil || used != "v1" || !bytes.Equal(old[0], before[0]) {
			t.Fatalf("v1 after rotation: %s %v; want the old MAC", used, err)
		}
		v.Write(t, "transit/keys/idx-rotate/config", map[string]any{"min_decryption_version": 2})
		if versions, _ := kr.IndexKeyVersions(ctx, "default"); strings.Join(versions, ",") != "v2" {
			t.Fatalf("versions after min_decryption_version 2 = %v, want v2", versions)
		}
		if _, _, err := kr.IndexMACs(ctx, "default", "email", "v9", inputs[:1]); err == nil {
			t.Fatal("a version that does not exist gave MACs")
		}
		if _, _, err := kr.IndexMACs(ctx, "default", "email", "x1", inputs[:1]); !errors.Is(err, keyring.ErrUnknownKey) {
			t.Fatalf("a malformed version: %v, want ErrUnknownKey", err)
		}
	})

	t.Run("a token without the hmac capability gets ErrPermission", func(t *testing.T) {
		t.Parallel()
		v.CreateKey(t, "idx-denied")
		v.WritePolicy(t, "idx-denied", testenv.TransitPolicy("idx-denied"))
		tok := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"idx-denied"}})
		kr := open(t, v, vault.Config{KeyName: "idx-denied", Token: tok})
		_, _, err := kr.IndexMACs(ctx, "default", "email", "", [][]byte{value})
		if !errors.Is(err, keyring.ErrPermission) || strings.Contains(err.Error(), string(value)) {
			t.Fatalf("IndexMACs without hmac capability: %v, want ErrPermission without the value", err)
		}
	})
}
