package vault_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring/vault"
)

// TestNewDataKeyRefusesKeyIDsThatCannotBeParsed: a transit mount and key
// name that are valid one by one but together make a key ID longer than
// ParseKeyID accepts must not seal payloads: those could never be opened.
func TestNewDataKeyRefusesKeyIDsThatCannotBeParsed(t *testing.T) {
	t.Parallel()
	mount, key := strings.Repeat("m", 120), strings.Repeat("k", 128)
	dek := base64.StdEncoding.EncodeToString(make([]byte, 32))
	f := newFakeVault(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/keys/"+key):
			reply(w, 200, `{"data":{"supports_decryption":true,"derived":false,"latest_version":1}}`)
		case strings.HasSuffix(r.URL.Path, "/datakey/plaintext/"+key):
			reply(w, 200, fmt.Sprintf(`{"data":{"plaintext":%q,"ciphertext":"vault:v1:AAAA"}}`, dek))
		default:
			reply(w, 404, `{"errors":[]}`)
		}
	})
	kr, err := openFake(t, f, vault.Config{Mount: mount, KeyName: key})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := kr.NewDataKey(context.Background(), "default")
	if err == nil {
		t.Fatalf("NewDataKey gave key ID %q (%d bytes), which ParseKeyID refuses", dk.KeyID, len(dk.KeyID))
	}
	if _, perr := vault.ParseKeyID("vault/" + mount + "/" + key + "/v1"); perr == nil {
		t.Fatal("the test's key ID parses; make it longer")
	}
}
