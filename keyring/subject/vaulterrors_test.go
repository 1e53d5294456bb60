package subject_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestVaultStoreNotErasedByMisroute checks that a Vault that does not
// answer as transit does never makes payloads "erased" or a shred report
// "no key". A 404 (the mount is wrong, a proxy does not route the path:
// Vault 1.19 answers `no handler for route ... route entry not found`)
// is unavailable; a missing transit key without a tombstone is unknown.
func TestVaultStoreNotErasedByMisroute(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		unknown bool // UnwrapDataKeys reports ErrUnknownKey
	}{
		{"missing transit key", http.StatusBadRequest, `{"errors":["encryption key not found"]}`, true},
		{"unmounted path", http.StatusNotFound, `{"errors":["no handler for route \"transit2/decrypt/subject-alice\". route entry not found."]}`, false},
		{"proxy 404", http.StatusNotFound, `{"errors":["not found"]}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if strings.HasSuffix(r.URL.Path, "/hmac/subject-store") {
					// The store is initialised: its key answers.
					w.Write([]byte(`{"data":{"hmac":"vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}`))
					return
				}
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
			s, err := subject.NewVault(context.Background(), subject.VaultConfig{Client: c})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			h := strings.Repeat("a", 32)
			_, err = s.UnwrapDataKeys(ctx, []keyring.WrappedKey{{KeyID: "subject/vault/" + h + "/0011223344556677", Wrapped: []byte("vault:v1:AAAA")}})
			if err == nil || errors.Is(err, keyring.ErrErased) || errors.Is(err, keyring.ErrUnknownKey) != tc.unknown {
				t.Errorf("UnwrapDataKeys: %v, want unknown=%v and never erased", err, tc.unknown)
			}
			if !tc.unknown {
				if existed, err := s.Shred(ctx, h); err == nil {
					t.Errorf("Shred through a misrouted Vault: existed=%v, want an error", existed)
				}
			}
		})
	}
}
