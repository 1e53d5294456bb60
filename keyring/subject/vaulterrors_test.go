package subject_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
	"github.com/envelopecodec/envelope/keyring/vault"
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
				switch {
				case r.URL.Path == "/v1/sys/health":
					w.Write([]byte(`{"initialized":true,"sealed":false}`))
					return
				case r.URL.Path == "/v1/auth/token/lookup-self":
					w.Write([]byte(`{"data":{"ttl":0,"renewable":false}}`))
					return
				case r.URL.Path == "/v1/transit/keys/temporal":
					w.Write([]byte(`{"data":{"supports_decryption":true,"derived":false,"latest_version":1}}`))
					return
				case strings.HasSuffix(r.URL.Path, "/hmac/subject-store"):
					// The store is initialised: its key answers.
					w.Write([]byte(`{"data":{"hmac":"vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}`))
					return
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			kr, err := vault.New(context.Background(), vault.Config{Address: srv.URL, Token: "t", KeyName: "temporal", MaxRetries: 1, RetryWait: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer kr.Close()
			s, err := subject.NewVault(context.Background(), subject.VaultConfig{Keyring: kr})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			h := strings.Repeat("a", 32)
			_, err = s.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: "subject/vault/" + h + "/0011223344556677", Wrapped: []byte("vault:v1:AAAA")}})
			if err == nil || errors.Is(err, keyring.ErrErased) || errors.Is(err, keyring.ErrUnknownKey) != tc.unknown {
				t.Errorf("UnwrapDataKeys: %v, want unknown=%v and never erased", err, tc.unknown)
			}
			if !tc.unknown {
				if existed, err := s.Shred(ctx, "default", h); err == nil {
					t.Errorf("Shred through a misrouted Vault: existed=%v, want an error", existed)
				}
			}
		})
	}
}
