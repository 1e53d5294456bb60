// Package jwttest mints JSON Web Tokens for tests: it makes an RSA or
// ECDSA key pair, publishes the public key as a JWKS (a file or an
// httptest URL) and signs tokens with the claims a test asks for,
// including broken ones (expired, "alg": "none", HS256 signed with the
// public key). Its keys are random, live only in memory and must never be
// used outside tests.
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Default claim values of an [Issuer].
const (
	DefaultIssuer   = "https://issuer.test"
	DefaultAudience = "codec-server"
	DefaultSubject  = "alice@example.com"
	DefaultClaim    = "permissions"
)

// Options configures [New]. All fields are optional.
type Options struct {
	// Alg is the signing algorithm: "RS256" (default), "RS384", "RS512",
	// "PS256", "ES256" or "ES384".
	Alg string
	// KeyID is the "kid" of the key. Default: "test-key-1".
	KeyID string
	// Issuer and Audience are put in every token unless the Claims override
	// them. Defaults: DefaultIssuer and DefaultAudience.
	Issuer   string
	Audience string
}

// Issuer signs tokens with one private key and publishes its public key.
// It is safe for concurrent use.
type Issuer struct {
	alg    jwa.SignatureAlgorithm
	opts   Options
	mu     sync.Mutex
	priv   jwk.Key
	pub    jwk.Key
	pubRaw crypto.PublicKey

	fetches atomic.Int64
}

// New returns an Issuer with a fresh key pair. It fails the test on error.
func New(t testing.TB, opts Options) *Issuer {
	t.Helper()
	if opts.Alg == "" {
		opts.Alg = "RS256"
	}
	if opts.KeyID == "" {
		opts.KeyID = "test-key-1"
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	alg, ok := jwa.LookupSignatureAlgorithm(opts.Alg)
	if !ok {
		t.Fatalf("jwttest: unknown algorithm %q", opts.Alg)
	}
	iss := &Issuer{alg: alg, opts: opts}
	iss.newKey(t, opts.KeyID)
	return iss
}

// newKey makes a fresh key pair with kid.
func (i *Issuer) newKey(t testing.TB, kid string) {
	t.Helper()
	var raw crypto.Signer
	var err error
	switch i.opts.Alg {
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		raw, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatalf("jwttest: generate key: %v", err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatalf("jwttest: import key: %v", err)
	}
	must(t, priv.Set(jwk.KeyIDKey, kid))
	must(t, priv.Set(jwk.AlgorithmKey, i.alg))
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatalf("jwttest: public key: %v", err)
	}
	must(t, pub.Set(jwk.KeyUsageKey, "sig"))
	i.mu.Lock()
	i.priv, i.pub, i.pubRaw = priv, pub, raw.Public()
	i.opts.KeyID = kid
	i.mu.Unlock()
}

// Rotate replaces the key pair by a new one with the key ID kid; tokens
// signed afterwards carry kid. The JWKS serves only the new key.
func (i *Issuer) Rotate(t testing.TB, kid string) { i.newKey(t, kid) }

// KeyID returns the current key ID.
func (i *Issuer) KeyID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.opts.KeyID
}

// IssuerURL and Audience return the default "iss" and "aud" of tokens.
func (i *Issuer) IssuerURL() string { return i.opts.Issuer }

// Audience returns the default "aud" of tokens.
func (i *Issuer) Audience() string { return i.opts.Audience }

// JWKS returns the public key set as JSON.
func (i *Issuer) JWKS(t testing.TB) []byte {
	t.Helper()
	i.mu.Lock()
	pub := i.pub
	i.mu.Unlock()
	set := jwk.NewSet()
	must(t, set.AddKey(pub))
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatalf("jwttest: marshal JWKS: %v", err)
	}
	return b
}

// WriteJWKSFile writes the public key set to path (mode 0644) and returns
// path. An empty path writes jwks.json in a t.TempDir().
func (i *Issuer) WriteJWKSFile(t testing.TB, path string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "jwks.json")
	}
	if err := os.WriteFile(path, i.JWKS(t), 0o644); err != nil {
		t.Fatalf("jwttest: %v", err)
	}
	return path
}

// ServeJWKS serves the current public key set at the returned URL until
// the test ends; every GET reads the current key (so Rotate shows).
// Fetches counts the GETs.
func (i *Issuer) ServeJWKS(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(i.JWKS(t))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/.well-known/jwks.json"
}

// Fetches returns how many times the JWKS URL was fetched.
func (i *Issuer) Fetches() int64 { return i.fetches.Load() }

// Claims are the claims of one token. Zero fields take defaults: Issuer
// and Audience from the Issuer, Subject DefaultSubject, IssuedAt now,
// ExpiresAt an hour from now, no "nbf".
type Claims struct {
	Subject   string
	Issuer    string
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	NotBefore time.Time

	// Permissions go in the claim PermissionsClaim (default
	// "permissions") as a JSON array of strings, e.g. "default:read".
	Permissions      []string
	PermissionsClaim string

	// Extra claims, set last.
	Extra map[string]any

	// KeyID overrides the "kid" header; "-" leaves it out.
	KeyID string

	// Header holds extra protected header parameters, e.g. "crit".
	Header map[string]any
}

// Token signs claims with the Issuer's key and returns the compact JWT.
func (i *Issuer) Token(t testing.TB, c Claims) string {
	t.Helper()
	tok := i.build(t, c)
	i.mu.Lock()
	priv := i.priv
	i.mu.Unlock()
	if c.KeyID != "" {
		cl, err := priv.Clone()
		if err != nil {
			t.Fatal(err)
		}
		if c.KeyID == "-" {
			must(t, cl.Remove(jwk.KeyIDKey))
		} else {
			must(t, cl.Set(jwk.KeyIDKey, c.KeyID))
		}
		priv = cl
	}
	var kopts []jwt.Option
	if len(c.Header) > 0 {
		h := jws.NewHeaders()
		for k, v := range c.Header {
			must(t, h.Set(k, v))
		}
		kopts = append(kopts, jws.WithProtectedHeaders(h))
	}
	b, err := jwt.Sign(tok, jwt.WithKey(i.alg, priv, kopts...))
	if err != nil {
		t.Fatalf("jwttest: sign: %v", err)
	}
	return string(b)
}

// Bearer returns "Bearer " + Token(c), the value of an Authorization
// header (and of `temporal --codec-auth`).
func (i *Issuer) Bearer(t testing.TB, c Claims) string { return "Bearer " + i.Token(t, c) }

// Unsigned returns a token with "alg": "none" and an empty signature.
func (i *Issuer) Unsigned(t testing.TB, c Claims) string {
	t.Helper()
	return compact(t, map[string]any{"alg": "none", "typ": "JWT", "kid": i.KeyID()}, i.build(t, c), func([]byte) []byte { return nil })
}

// HS256WithPublicKey returns a token signed with HMAC-SHA256 whose secret
// is the Issuer's public key in PEM form: the algorithm-confusion attack a
// verifier must refuse.
func (i *Issuer) HS256WithPublicKey(t testing.TB, c Claims) string {
	t.Helper()
	i.mu.Lock()
	pubRaw := i.pubRaw
	i.mu.Unlock()
	der, err := x509.MarshalPKIXPublicKey(pubRaw)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return compact(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": i.KeyID()}, i.build(t, c), func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	})
}

func (i *Issuer) build(t testing.TB, c Claims) jwt.Token {
	t.Helper()
	now := time.Now()
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.Issuer == "" {
		c.Issuer = i.opts.Issuer
	}
	if c.Audience == nil {
		c.Audience = []string{i.opts.Audience}
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = now.Add(time.Hour)
	}
	if c.PermissionsClaim == "" {
		c.PermissionsClaim = DefaultClaim
	}
	b := jwt.NewBuilder().Issuer(c.Issuer)
	if c.Subject != "-" { // "-" leaves "sub" out
		b = b.Subject(c.Subject)
	}
	b = b.Audience(c.Audience).
		IssuedAt(c.IssuedAt).Expiration(c.ExpiresAt)
	if !c.NotBefore.IsZero() {
		b = b.NotBefore(c.NotBefore)
	}
	if c.Permissions != nil {
		b = b.Claim(c.PermissionsClaim, c.Permissions)
	}
	for k, v := range c.Extra {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatalf("jwttest: build token: %v", err)
	}
	return tok
}

// compact assembles header.payload.signature by hand, for tokens the
// library refuses to sign.
func compact(t testing.TB, header map[string]any, tok jwt.Token, sign func([]byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	return in + "." + enc.EncodeToString(sign([]byte(in)))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("jwttest: %v", err)
	}
}
