package subject_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestVaultStoreNotErasedByMisroute checks that only Vault's own "no such
// transit key" answer counts as erased. A 404 (the mount is wrong, a proxy
// does not route the path: Vault 1.19 answers `no handler for route ...
// route entry not found`) must not turn payloads into "erased"
// placeholders, nor make a shred report "no key" while the key lives on.
func TestVaultStoreNotErasedByMisroute(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		erased  bool // UnwrapDataKeys reports ErrErased
		shredOK bool // Shred reports (false, nil): no key
	}{
		{"missing transit key", http.StatusBadRequest, `{"errors":["encryption key not found"]}`, true, true},
		{"unmounted path", http.StatusNotFound, `{"errors":["no handler for route \"transit2/decrypt/subject-alice\". route entry not found."]}`, false, false},
		{"proxy 404", http.StatusNotFound, `{"errors":["not found"]}`, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			cfg := api.DefaultConfig()
			cfg.Address = srv.URL
			cfg.MaxRetries = 0
			c, err := api.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.SetToken("t")
			s, err := subject.NewVault(subject.VaultConfig{Client: c})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, err = s.UnwrapDataKeys(ctx, []keyring.WrappedKey{{KeyID: "subject/vault/alice/0011223344556677", Wrapped: []byte("vault:v1:AAAA")}})
			if err == nil || errors.Is(err, keyring.ErrErased) != tc.erased {
				t.Errorf("UnwrapDataKeys: %v, want erased=%v", err, tc.erased)
			}
			existed, err := s.Shred(ctx, "alice")
			if gotOK := err == nil && !existed; gotOK != tc.shredOK {
				t.Errorf("Shred: existed=%v err=%v, want no-key answer=%v", existed, err, tc.shredOK)
			}
		})
	}
}
