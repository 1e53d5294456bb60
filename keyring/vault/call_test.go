package vault_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// TestCallIsTheKeyringsCallPath: other packages (the data subject store)
// call Vault through Keyring.Call and get its retries and error mapping.
func TestCallIsTheKeyringsCallPath(t *testing.T) {
	t.Parallel()
	f := newFakeVault(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
		switch {
		case r.URL.Path == "/v1/transit/keys/subject-a" && r.Method == http.MethodDelete && attempt < 2:
			reply(w, 503, `{"errors":["Vault is sealed"]}`)
		case r.URL.Path == "/v1/transit/keys/subject-a" && r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/v1/transit/keys/subject-b":
			reply(w, 403, `{"errors":["permission denied"]}`)
		default:
			reply(w, 200, fmt.Sprintf(`{"data":{"method":%q}}`, r.Method))
		}
	})
	kr, err := openFake(t, f, vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	status, data, err := kr.Call(ctx, "create", "subject-c", http.MethodPut, "transit/keys/subject-c", map[string]any{"type": "aes256-gcm96"})
	if err != nil || status != 200 || !strings.Contains(string(data), `"PUT"`) {
		t.Fatalf("PUT: %d %s %v", status, data, err)
	}
	if status, _, err = kr.Call(ctx, "delete", "subject-a", http.MethodDelete, "transit/keys/subject-a", nil); err != nil || status != http.StatusNoContent {
		t.Fatalf("DELETE after a sealed answer: %d %v, want a retry that succeeds", status, err)
	}
	if n := f.count("transit/keys/subject-a"); n != 2 {
		t.Errorf("DELETE attempts %d, want 2 (one retry)", n)
	}
	if _, _, err = kr.Call(ctx, "read", "subject-b", http.MethodGet, "transit/keys/subject-b", nil); !errors.Is(err, keyring.ErrPermission) || !strings.Contains(err.Error(), `"subject-b"`) {
		t.Fatalf("403: %v, want ErrPermission naming the key", err)
	}
}
