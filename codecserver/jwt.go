package codecserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Defaults for [JWTConfig].
const (
	DefaultPermissionsClaim   = "permissions"
	DefaultJWTSkew            = 30 * time.Second
	DefaultJWKSRefresh        = 15 * time.Minute
	DefaultJWKSMinRefresh     = 30 * time.Second
	DefaultJWKSFileRefresh    = 5 * time.Second
	maxJWKSBytes              = 1 << 20
	maxTokenBytes             = 16 << 10
	oidcDiscoveryPath         = "/.well-known/openid-configuration"
	defaultJWKSFetchTimeout   = 10 * time.Second
	wwwAuthenticateRealmValue = `Bearer realm="codec-server"`
)

// DefaultJWTAlgorithms are the signature algorithms accepted unless
// JWTConfig.Algorithms says otherwise: asymmetric ones only.
var DefaultJWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// JWTConfig configures a [JWTVerifier]. Exactly one of JWKSURL, OIDCIssuer
// and JWKSFile is required; all other fields are optional.
type JWTConfig struct {
	// JWKSURL is fetched for the signing keys, cached, refreshed every
	// RefreshInterval and, at most once per MinRefreshInterval, when a
	// token names an unknown key ID.
	JWKSURL string
	// OIDCIssuer is an OpenID Connect issuer; its discovery document names
	// the JWKS URL. It also becomes Issuer unless that is set.
	OIDCIssuer string
	// JWKSFile is a local JWKS, re-read when it changes.
	JWKSFile string

	// Issuer and Audience, when set, must match "iss" and be in "aud".
	Issuer   string
	Audience string

	// Algorithms allow-lists the signature algorithms. Default:
	// DefaultJWTAlgorithms. "none" and HMAC algorithms are refused.
	Algorithms []string

	// PermissionsClaim names the claim holding Temporal permissions.
	// Default: "permissions".
	PermissionsClaim string

	// Skew is the clock skew allowed for "exp" and "nbf". Default: 30s.
	Skew time.Duration

	// RefreshInterval and MinRefreshInterval: see JWKSURL. Defaults: 15
	// minutes and 30 seconds (5 seconds and 0 for JWKSFile).
	RefreshInterval    time.Duration
	MinRefreshInterval time.Duration

	// HTTPClient fetches the JWKS and the discovery document. Default: a
	// client with a 10 s timeout.
	HTTPClient *http.Client

	// Logger receives key refreshes and their failures. Default:
	// slog.Default().
	Logger *slog.Logger

	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// JWTVerifier checks bearer tokens against a JWKS and turns them into an
// [Identity]. It is safe for concurrent use.
type JWTVerifier struct {
	cfg    JWTConfig
	algs   map[string]jwa.SignatureAlgorithm
	fetch  func(ctx context.Context) (jwk.Set, error)
	source string

	mu        sync.Mutex // serialises fetches
	setMu     sync.RWMutex
	set       jwk.Set
	fetched   time.Time
	lastForce time.Time
}

// NewJWTVerifier checks the configuration and fetches the keys once, so a
// wrong URL or file fails at start rather than at the first request.
func NewJWTVerifier(ctx context.Context, cfg JWTConfig) (*JWTVerifier, error) {
	n := 0
	for _, s := range []string{cfg.JWKSURL, cfg.OIDCIssuer, cfg.JWKSFile} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("codecserver: JWT: set exactly one of the JWKS URL, the OIDC issuer and the JWKS file")
	}
	if cfg.PermissionsClaim == "" {
		cfg.PermissionsClaim = DefaultPermissionsClaim
	}
	if cfg.Skew == 0 {
		cfg.Skew = DefaultJWTSkew
	}
	if cfg.Skew < 0 || cfg.RefreshInterval < 0 || cfg.MinRefreshInterval < 0 {
		return nil, errors.New("codecserver: JWT: negative duration")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultJWKSFetchTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultJWTAlgorithms
	}
	v := &JWTVerifier{cfg: cfg, algs: make(map[string]jwa.SignatureAlgorithm)}
	for _, name := range cfg.Algorithms {
		alg, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok || alg == jwa.NoSignature() || alg.IsSymmetric() || keyTypeFor(name) == "" {
			return nil, fmt.Errorf("codecserver: JWT: algorithm %q is not allowed: use asymmetric algorithms such as RS256 or ES256", name)
		}
		v.algs[name] = alg
	}
	switch {
	case cfg.JWKSFile != "":
		v.source = cfg.JWKSFile
		if v.cfg.RefreshInterval == 0 {
			v.cfg.RefreshInterval = DefaultJWKSFileRefresh
		}
		v.fetch = func(context.Context) (jwk.Set, error) { return readJWKSFile(cfg.JWKSFile) }
	default:
		if v.cfg.RefreshInterval == 0 {
			v.cfg.RefreshInterval = DefaultJWKSRefresh
		}
		if v.cfg.MinRefreshInterval == 0 {
			v.cfg.MinRefreshInterval = DefaultJWKSMinRefresh
		}
		url := cfg.JWKSURL
		if cfg.OIDCIssuer != "" {
			var err error
			if url, err = discoverJWKS(ctx, cfg.HTTPClient, cfg.OIDCIssuer); err != nil {
				return nil, fmt.Errorf("codecserver: JWT: %w", err)
			}
			if v.cfg.Issuer == "" {
				v.cfg.Issuer = cfg.OIDCIssuer
			}
		}
		v.source = url
		v.fetch = func(ctx context.Context) (jwk.Set, error) { return fetchJWKS(ctx, cfg.HTTPClient, url) }
	}
	set, err := v.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("codecserver: JWT: load keys: %w", err)
	}
	v.set, v.fetched = set, cfg.Now()
	return v, nil
}

// Source returns where the keys come from (URL or file), for logs.
func (v *JWTVerifier) Source() string { return v.source }

func readJWKSFile(path string) (jwk.Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS file %s is larger than %d bytes", path, maxJWKSBytes)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("JWKS file %s: %w", path, err)
	}
	return set, nil
}

func fetchJWKS(ctx context.Context, c *http.Client, url string) (jwk.Set, error) {
	b, err := httpGet(ctx, c, url)
	if err != nil {
		return nil, err
	}
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("JWKS from %s: %w", url, err)
	}
	return set, nil
}

func discoverJWKS(ctx context.Context, c *http.Client, issuer string) (string, error) {
	b, err := httpGet(ctx, c, strings.TrimSuffix(issuer, "/")+oidcDiscoveryPath)
	if err != nil {
		return "", fmt.Errorf("OIDC discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("OIDC discovery document of %s: %w", issuer, err)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("OIDC discovery document of %s has no jwks_uri", issuer)
	}
	if strings.TrimSuffix(doc.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return "", fmt.Errorf("OIDC discovery document of %s names issuer %q", issuer, doc.Issuer)
	}
	return doc.JWKSURI, nil
}

func httpGet(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", url, maxJWKSBytes)
	}
	return b, nil
}

// keys returns the current key set, refreshing it first when it is older
// than RefreshInterval or when force is set and the last forced refresh is
// older than MinRefreshInterval. A failed refresh keeps the old keys.
func (v *JWTVerifier) keys(ctx context.Context, force bool) jwk.Set {
	v.setMu.RLock()
	set, fetched := v.set, v.fetched
	v.setMu.RUnlock()
	now := v.cfg.Now()
	stale := now.Sub(fetched) >= v.cfg.RefreshInterval
	if !stale && !force {
		return set
	}
	if force {
		v.mu.Lock()
	} else if !v.mu.TryLock() {
		return set // another request is refreshing; the old keys are still good
	}
	defer v.mu.Unlock()
	v.setMu.RLock()
	if v.fetched != fetched { // someone else refreshed meanwhile
		set = v.set
		v.setMu.RUnlock()
		return set
	}
	v.setMu.RUnlock()
	if ctx.Err() != nil {
		return set // the client left while waiting for the lock: fetch nothing for it
	}
	if !stale && now.Sub(v.lastForce) < v.cfg.MinRefreshInterval {
		return set
	}
	// The fetch does not end with the request that triggered it: a client
	// that sends an unknown kid and hangs up must not cut the fetch short
	// and so use up the refresh budget (fetched, lastForce) for everyone.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultJWKSFetchTimeout)
	fresh, err := v.fetch(fctx)
	cancel()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			// Not a verdict on the key source: do not count it as a try.
			v.cfg.Logger.Warn("JWT: refreshing signing keys was canceled; keeping the old keys", "source", v.source, "err", err)
			return set
		}
		v.cfg.Logger.Error("JWT: refreshing signing keys failed; keeping the old keys", "source", v.source, "err", err)
		if !stale {
			v.lastForce = now
		}
		v.setMu.Lock()
		v.fetched = now // retry after RefreshInterval, not on every request
		v.setMu.Unlock()
		return set
	}
	if !stale {
		v.lastForce = now
	}
	v.setMu.Lock()
	v.set, v.fetched = fresh, now
	v.setMu.Unlock()
	v.cfg.Logger.Info("JWT: signing keys refreshed", "source", v.source, "keys", fresh.Len(), "forced", force && !stale)
	return fresh
}

// keyTypeFor returns the JWK key type an algorithm needs.
func keyTypeFor(alg string) string {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		return "RSA"
	case strings.HasPrefix(alg, "ES"):
		return "EC"
	case alg == "EdDSA", alg == "Ed25519":
		return "OKP"
	}
	return ""
}

// errUnknownKID is returned by the key provider when no key matches.
var errUnknownKID = errors.New("no signing key with the token's key ID")

// FetchKeys implements jws.KeyProvider: it checks the token's algorithm
// against the allow-list and offers the key its "kid" names, refreshing the
// key set once (rate limited) for an unknown kid.
func (v *JWTVerifier) FetchKeys(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	alg, ok := h.Algorithm()
	if !ok {
		return errors.New("token has no algorithm")
	}
	allowed, ok := v.algs[alg.String()]
	if !ok {
		return fmt.Errorf("algorithm %q is not allowed", truncate(alg.String(), 16))
	}
	kid, _ := h.KeyID()
	find := func(set jwk.Set) (jwk.Key, bool) {
		if kid != "" {
			return set.LookupKeyID(kid)
		}
		if set.Len() == 1 { // a single key needs no kid
			return set.Key(0)
		}
		return nil, false
	}
	key, ok := find(v.keys(ctx, false))
	if !ok {
		key, ok = find(v.keys(ctx, true))
	}
	if !ok {
		return errUnknownKID
	}
	if key.KeyType().String() != keyTypeFor(allowed.String()) {
		return fmt.Errorf("key %q does not fit algorithm %s", truncate(kid, 64), allowed)
	}
	if ka, ok := key.Algorithm(); ok && ka.String() != allowed.String() {
		return fmt.Errorf("key %q is for algorithm %s, token says %s", truncate(kid, 64), ka, allowed)
	}
	if use, ok := key.KeyUsage(); ok && use != "sig" {
		return fmt.Errorf("key %q is not a signing key", truncate(kid, 64))
	}
	sink.Key(allowed, key)
	return nil
}

// Verify checks the token (without the "Bearer " prefix) and returns the
// identity it carries. Errors are [*Error] values with status 401 whose
// message says what is wrong (expired, wrong audience, ...) but never
// contains the token.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) > maxTokenBytes {
		return nil, unauthenticated("token too long", nil)
	}
	opts := []jwt.ParseOption{
		jwt.WithKeyProvider(v),
		jwt.WithContext(ctx),
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(v.cfg.Skew),
		jwt.WithClock(jwt.ClockFunc(v.cfg.Now)),
	}
	if v.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.cfg.Issuer))
	}
	if v.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.cfg.Audience))
	}
	tok, err := jwt.ParseString(token, opts...)
	if err != nil {
		switch {
		case errors.Is(err, jwt.TokenExpiredError()):
			return nil, unauthenticated("token expired", err)
		case errors.Is(err, jwt.TokenNotYetValidError()):
			return nil, unauthenticated("token not valid yet", err)
		case errors.Is(err, jwt.InvalidIssuerError()):
			return nil, unauthenticated("token has the wrong issuer", err)
		case errors.Is(err, jwt.InvalidAudienceError()):
			return nil, unauthenticated("token has the wrong audience", err)
		case errors.Is(err, errUnknownKID):
			return nil, unauthenticated("token signed by an unknown key", err)
		}
		return nil, unauthenticated("invalid token", err)
	}
	if _, ok := tok.Expiration(); !ok {
		return nil, unauthenticated("token has no expiry", nil)
	}
	sub, _ := tok.Subject()
	var raw any
	if err := tok.Get(v.cfg.PermissionsClaim, &raw); err != nil {
		raw = nil // no permissions: every namespace is forbidden
	}
	entries, err := claimStrings(raw)
	if err != nil {
		return nil, unauthenticated("token permissions claim is malformed", err)
	}
	perms, err := ParsePermissions(entries)
	if err != nil {
		return nil, unauthenticated("token permissions claim is malformed", err)
	}
	return &Identity{Subject: sub, Method: "jwt", Permissions: perms}, nil
}

// claimStrings accepts a claim that is a list of strings or one string.
func claimStrings(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case []string:
		return x, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("permissions claim holds a non-string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("permissions claim is a %T, want a list of strings", v)
}

func unauthenticated(msg string, err error) *Error {
	return newError(http.StatusUnauthorized, "unauthenticated", msg, err)
}
