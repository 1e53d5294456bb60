package codecserver_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
)

// TestKeysSharingAKeyIDEachVerifyTheirAlgorithm: a JWKS may give an RSA
// and an EC key the same "kid" (an issuer moving from RS256 to ES256);
// tokens of either algorithm verify with the key that fits it. Before,
// the first key with the kid was the only one tried, and ES256 tokens
// failed ("does not fit algorithm").
func TestKeysSharingAKeyIDEachVerifyTheirAlgorithm(t *testing.T) {
	t.Parallel()
	rsa := jwttest.New(t, jwttest.Options{Alg: "RS256", KeyID: "shared"})
	ec := jwttest.New(t, jwttest.Options{Alg: "ES256", KeyID: "shared"})
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	for _, iss := range []*jwttest.Issuer{rsa, ec} {
		var one struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(iss.JWKS(t), &one); err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, one.Keys...)
	}
	b, _ := json.Marshal(set)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := codecserver.NewJWTVerifier(context.Background(), codecserver.JWTConfig{
		JWKSFile: path, Issuer: rsa.IssuerURL(), Audience: rsa.Audience(), Logger: discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, iss := range []*jwttest.Issuer{rsa, ec} {
		tok := iss.Token(t, jwttest.Claims{Issuer: rsa.IssuerURL(), Audience: []string{rsa.Audience()}, Permissions: []string{"default:read"}})
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("a token signed by the %s key: %v", map[*jwttest.Issuer]string{rsa: "RSA", ec: "EC"}[iss], err)
		}
	}
}
