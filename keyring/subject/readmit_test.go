package subject_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// TestDirReadmitRefusesUnfinishedShred: a shred that wrote its tombstone
// but did not get to zero the key file leaves the key able to open the
// subject's payloads; re-admitting then would keep it for good, so
// Readmit refuses until the shred is run again.
func TestDirReadmitRefusesUnfinishedShred(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDir(t)
	h := handleOf(t, d, "grace")
	dk, err := d.NewDataKey(ctx, "default", h)
	if err != nil {
		t.Fatal(err)
	}
	// What Shred writes before zeroing the key: the tombstone.
	var file struct {
		Generation string `json:"generation"`
	}
	raw, _ := os.ReadFile(filepath.Join(d.Folder(), h+".key"))
	json.Unmarshal(raw, &file)
	tomb, _ := json.Marshal(map[string]any{"version": 1, "handle": h, "erased": []string{file.Generation}, "blocked": true})
	if err := os.WriteFile(filepath.Join(d.Folder(), h+".tomb"), tomb, 0o600); err != nil {
		t.Fatal(err)
	}
	if was, err := d.Readmit(ctx, "default", h); err == nil {
		t.Fatalf("readmit with the key file still there: was %v, no error", was)
	}
	if existed, err := d.Shred(ctx, "default", h); err != nil || !existed {
		t.Fatalf("the shred run again: existed %v, err %v", existed, err)
	}
	if was, err := d.Readmit(ctx, "default", h); err != nil || !was {
		t.Fatalf("readmit after the shred: was %v, err %v", was, err)
	}
	if _, err := d.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}}); !errors.Is(err, keyring.ErrErased) {
		t.Errorf("the shredded key after the re-admission: err %v, want ErrErased", err)
	}
}

// failDeletes fails every DELETE while on: a shred that creates its
// tombstones and then cannot delete the key (Vault went away, a policy
// without delete).
type failDeletes struct {
	subject.VaultCaller
	on atomic.Bool
}

func (f *failDeletes) Call(ctx context.Context, operation, key, method, path string, body any) (int, json.RawMessage, error) {
	if f.on.Load() && method == http.MethodDelete {
		return http.StatusServiceUnavailable, nil, fmt.Errorf("vault: %s with key %q: test: %w", operation, key, keyring.ErrUnavailable)
	}
	return f.VaultCaller.Call(ctx, operation, key, method, path, body)
}

// TestVaultReadmitRefusesUnfinishedShred: a shred that failed before
// deleting the subject's transit key leaves the key, and the payloads
// under it, readable; Readmit must not lift the block until a shred has
// deleted it.
func TestVaultReadmitRefusesUnfinishedShred(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	initVaultStore(t, v)
	ctx := context.Background()
	kr, err := vault.New(ctx, vault.Config{Address: v.Addr, Token: v.Token, KeyName: "temporal"})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	fd := &failDeletes{VaultCaller: kr}
	s, err := subject.NewVault(ctx, subject.VaultConfig{Keyring: fd})
	if err != nil {
		t.Fatal(err)
	}
	h := vaultHandle(t, s, "customer-unfinished")
	dk, err := s.NewDataKey(ctx, "default", h)
	if err != nil {
		t.Fatal(err)
	}
	fd.on.Store(true)
	if _, err := s.Shred(ctx, "default", h); err == nil {
		t.Fatal("shred with deletes failing: no error")
	}
	fd.on.Store(false)
	if was, err := s.Readmit(ctx, "default", h); err == nil {
		t.Fatalf("readmit with the transit key still there: was %v, no error", was)
	}
	if existed, err := s.Shred(ctx, "default", h); err != nil || !existed {
		t.Fatalf("the shred run again: existed %v, err %v", existed, err)
	}
	if was, err := s.Readmit(ctx, "default", h); err != nil || !was {
		t.Fatalf("readmit after the shred: was %v, err %v", was, err)
	}
	if _, err := s.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}}); !errors.Is(err, keyring.ErrErased) {
		t.Errorf("the shredded key after the re-admission: err %v, want ErrErased", err)
	}
}

// TestVaultUnfinishedShredBlocksSeals: a shred that created the
// tombstones but could not delete the subject's transit key leaves the
// key in place; sealing for the subject must still fail with ErrErased,
// not go on under the key the shred meant to delete.
func TestVaultUnfinishedShredBlocksSeals(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	initVaultStore(t, v)
	ctx := context.Background()
	kr, err := vault.New(ctx, vault.Config{Address: v.Addr, Token: v.Token, KeyName: "temporal"})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	fd := &failDeletes{VaultCaller: kr}
	s, err := subject.NewVault(ctx, subject.VaultConfig{Keyring: fd})
	if err != nil {
		t.Fatal(err)
	}
	h := vaultHandle(t, s, "customer-half-shredded")
	if _, err := s.NewDataKey(ctx, "default", h); err != nil {
		t.Fatal(err)
	}
	fd.on.Store(true)
	if _, err := s.Shred(ctx, "default", h); err == nil {
		t.Fatal("shred with deletes failing: no error")
	}
	fd.on.Store(false)
	if dk, err := s.NewDataKey(ctx, "default", h); !errors.Is(err, keyring.ErrErased) {
		t.Fatalf("seal after the unfinished shred: key %q, err %v, want ErrErased", dk.KeyID, err)
	}
	if existed, err := s.Shred(ctx, "default", h); err != nil || !existed {
		t.Fatalf("the shred run again: existed %v, err %v", existed, err)
	}
	if _, err := s.NewDataKey(ctx, "default", h); !errors.Is(err, keyring.ErrErased) {
		t.Fatalf("seal after the finished shred: err %v, want ErrErased", err)
	}
}
