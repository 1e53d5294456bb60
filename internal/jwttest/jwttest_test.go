package jwttest_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/envelopecodec/envelope/internal/jwttest"
)

func TestTokenVerifiesAgainstJWKS(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			iss := jwttest.New(t, jwttest.Options{Alg: alg})
			path := iss.WriteJWKSFile(t, "")
			set, err := jwk.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tok := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}})
			parsed, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithIssuer(iss.IssuerURL()), jwt.WithAudience(iss.Audience()))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var perms []any
			if err := parsed.Get("permissions", &perms); err != nil || len(perms) != 1 || perms[0] != "default:read" {
				t.Errorf("permissions = %v (%v)", perms, err)
			}
		})
	}
}

func TestServeJWKSCountsFetches(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{})
	url := iss.ServeJWKS(t)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if iss.Fetches() != 1 {
		t.Errorf("Fetches = %d, want 1", iss.Fetches())
	}
}

func TestBrokenTokensAreRefused(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{})
	set, err := jwk.ReadFile(iss.WriteJWKSFile(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"alg none":              iss.Unsigned(t, jwttest.Claims{}),
		"HS256 with public key": iss.HS256WithPublicKey(t, jwttest.Claims{}),
	} {
		if strings.Count(tok, ".") != 2 {
			t.Errorf("%s: %q is not compact", name, tok)
		}
		if _, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_ = os.Remove
}
