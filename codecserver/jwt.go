package codecserver

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/envelopecodec/envelope/internal/truncate"
)

// Defaults for [JWTConfig].
const (
	DefaultPermissionsClaim = "permissions"
	DefaultJWTSkew          = 30 * time.Second
	DefaultJWKSRefresh      = 15 * time.Minute
	DefaultJWKSMinRefresh   = 30 * time.Second
	DefaultJWKSFileRefresh  = 5 * time.Second
	// DefaultJWKSFileMinRefresh rate-limits the checks of a JWKS file for
	// a token with an unknown key ID; the file is re-read only when its
	// size, modification time or content changed.
	DefaultJWKSFileMinRefresh = time.Second
	// DefaultTokenCacheSize bounds the cache of verified tokens.
	DefaultTokenCacheSize     = 1024
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

	// PermissionsRegex, when set, parses each permission entry instead of
	// "<namespace>:<role>" (Temporal's permissionsRegex): it must have the
	// named groups "namespace" and "role". Default: none.
	PermissionsRegex string

	// MaxLifetime, when positive, refuses tokens whose "exp" is more than
	// MaxLifetime after their "iat" (or after now, for tokens without
	// "iat"). Default: 0, no limit.
	MaxLifetime time.Duration

	// CacheSize bounds the cache of verified tokens: a token seen again is
	// not verified again while it is inside its "nbf"/"exp" bounds and the
	// key set has not changed since. Default: DefaultTokenCacheSize;
	// negative turns the cache off.
	CacheSize int

	// Skew is the clock skew allowed for "exp" and "nbf". Default: 30s.
	Skew time.Duration

	// RefreshInterval and MinRefreshInterval: see JWKSURL. Defaults: 15
	// minutes and 30 seconds (5 seconds and 1 second for JWKSFile, which
	// is re-read only when it changed).
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
	fetch  func(ctx context.Context) (jwk.Set, [32]byte, error)
	source string
	perms  *PermissionsRegex
	cache  *tokenCache

	// gen counts key-set changes; cached tokens of an older generation
	// are verified again.
	gen       atomic.Uint64
	keysSum   [32]byte
	file      fileState
	fileReads atomic.Int64

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
	if cfg.Skew < 0 || cfg.RefreshInterval < 0 || cfg.MinRefreshInterval < 0 || cfg.MaxLifetime < 0 {
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
	if cfg.PermissionsRegex != "" {
		pr, err := CompilePermissionsRegex(cfg.PermissionsRegex)
		if err != nil {
			return nil, err
		}
		v.perms = pr
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultTokenCacheSize
		v.cfg.CacheSize = cfg.CacheSize
	}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
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
		if v.cfg.MinRefreshInterval == 0 {
			v.cfg.MinRefreshInterval = DefaultJWKSFileMinRefresh
		}
		v.fetch = func(context.Context) (jwk.Set, [32]byte, error) { return v.readJWKSFileIfChanged(cfg.JWKSFile) }
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
		v.fetch = func(ctx context.Context) (jwk.Set, [32]byte, error) { return fetchJWKS(ctx, cfg.HTTPClient, url) }
	}
	set, sum, err := v.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("codecserver: JWT: load keys: %w", err)
	}
	v.set, v.fetched, v.keysSum = set, cfg.Now(), sum
	return v, nil
}

// Source returns where the keys come from (URL or file), for logs.
func (v *JWTVerifier) Source() string { return v.source }

// errKeysUnchanged reports a key source that has not changed since it was
// last read.
var errKeysUnchanged = errors.New("key set unchanged")

// fileState is what the verifier last saw of its JWKS file.
type fileState struct {
	mu      sync.Mutex
	size    int64
	modTime time.Time
	sum     [32]byte
	read    bool
}

// readJWKSFileIfChanged reads the JWKS file unless its size and
// modification time are those of the last read (errKeysUnchanged), and
// parses it unless its content hashes the same (errKeysUnchanged too).
func (v *JWTVerifier) readJWKSFileIfChanged(path string) (jwk.Set, [32]byte, error) {
	fs := &v.file
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fi, err := os.Stat(path)
	if err != nil {
		return nil, [32]byte{}, err
	}
	if fs.read && fi.Size() == fs.size && fi.ModTime().Equal(fs.modTime) {
		return nil, fs.sum, errKeysUnchanged
	}
	if fi.Size() > maxJWKSBytes {
		return nil, [32]byte{}, fmt.Errorf("JWKS file %s is larger than %d bytes", path, maxJWKSBytes)
	}
	v.fileReads.Add(1)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, [32]byte{}, err
	}
	if len(b) > maxJWKSBytes {
		return nil, [32]byte{}, fmt.Errorf("JWKS file %s is larger than %d bytes", path, maxJWKSBytes)
	}
	sum := sha256.Sum256(b)
	if fs.read && sum == fs.sum {
		fs.size, fs.modTime = fi.Size(), fi.ModTime()
		return nil, sum, errKeysUnchanged
	}
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("JWKS file %s: %w", path, err)
	}
	fs.size, fs.modTime, fs.sum, fs.read = fi.Size(), fi.ModTime(), sum, true
	return set, sum, nil
}

func fetchJWKS(ctx context.Context, c *http.Client, url string) (jwk.Set, [32]byte, error) {
	b, err := httpGet(ctx, c, url)
	if err != nil {
		return nil, [32]byte{}, err
	}
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("JWKS from %s: %w", url, err)
	}
	return set, sha256.Sum256(b), nil
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
	fresh, sum, err := v.fetch(fctx)
	cancel()
	if errors.Is(err, errKeysUnchanged) {
		if !stale {
			v.lastForce = now
		}
		v.setMu.Lock()
		v.fetched = now
		v.setMu.Unlock()
		return set
	}
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
	if sum != v.keysSum {
		v.keysSum = sum
		v.gen.Add(1) // cached tokens are verified again against the new keys
		if v.cache != nil {
			v.cache.clear()
		}
	}
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

// findKey returns the key of set that kid names and that fits alg. Keys
// may share a kid (an RSA and an EC key while an issuer moves from one to
// the other): the first that fits is offered. A token without a kid may
// use the only key of a one-key set. errUnknownKID when no key has the
// kid; else, when none fits, why the first does not.
func findKey(set jwk.Set, kid, alg string) (jwk.Key, error) {
	if kid == "" {
		if set.Len() != 1 {
			return nil, errUnknownKID
		}
		k, _ := set.Key(0)
		return k, keyFits(k, kid, alg)
	}
	var misfit error
	for i := range set.Len() {
		k, _ := set.Key(i)
		if id, _ := k.KeyID(); id != kid {
			continue
		}
		err := keyFits(k, kid, alg)
		if err == nil {
			return k, nil
		}
		if misfit == nil {
			misfit = err
		}
	}
	if misfit == nil {
		return nil, errUnknownKID
	}
	return nil, misfit
}

// keyFits says why key (named kid) cannot verify a signature of alg, or nil.
func keyFits(key jwk.Key, kid, alg string) error {
	if key.KeyType().String() != keyTypeFor(alg) {
		return fmt.Errorf("key %q does not fit algorithm %s", truncate.To(kid, 64), alg)
	}
	if ka, ok := key.Algorithm(); ok && ka.String() != alg {
		return fmt.Errorf("key %q is for algorithm %s, token says %s", truncate.To(kid, 64), ka, alg)
	}
	if use, ok := key.KeyUsage(); ok && use != "sig" {
		return fmt.Errorf("key %q is not a signing key", truncate.To(kid, 64))
	}
	return nil
}

// errUnknownKID is returned by the key provider when no key matches.
var errUnknownKID = errors.New("no signing key with the token's key ID")

// errCritHeader refuses a token with a "crit" header.
var errCritHeader = errors.New("token has a \"crit\" header")

// FetchKeys implements jws.KeyProvider: it checks the token's algorithm
// against the allow-list and offers the key its "kid" names, refreshing the
// key set once (rate limited) for an unknown kid.
func (v *JWTVerifier) FetchKeys(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	if h.Has(jws.CriticalKey) {
		// RFC 7515 §4.1.11: extensions this server does not understand
		// must not be ignored; it understands none.
		return errCritHeader
	}
	alg, ok := h.Algorithm()
	if !ok {
		return errors.New("token has no algorithm")
	}
	allowed, ok := v.algs[alg.String()]
	if !ok {
		return fmt.Errorf("algorithm %q is not allowed", truncate.To(alg.String(), 16))
	}
	kid, _ := h.KeyID()
	key, err := findKey(v.keys(ctx, false), kid, allowed.String())
	if errors.Is(err, errUnknownKID) {
		key, err = findKey(v.keys(ctx, true), kid, allowed.String())
	}
	if err != nil {
		return err
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
	var key [32]byte
	if v.cache != nil {
		key = tokenHash(token)
		// A cache hit skips FetchKeys, which is what refreshes the key set
		// every RefreshInterval: do that here, or a key removed from the
		// JWKS would keep its cached tokens valid until they expire. It
		// costs a read lock and a clock read while the keys are fresh.
		v.keys(ctx, false)
		if id, ok := v.cache.get(key, v.cfg.Now(), v.gen.Load()); ok {
			return id, nil
		}
	}
	gen := v.gen.Load()
	id, notBefore, expires, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(key, cachedToken{id: id, notBefore: notBefore, expires: expires, gen: gen}, v.cfg.Now())
	}
	return id, nil
}

// verify checks the token fully and returns its identity and the times
// between which the checks that depend on the clock pass.
func (v *JWTVerifier) verify(ctx context.Context, token string) (id *Identity, notBefore, expires time.Time, err error) {
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
	fail := func(msg string, err error) (*Identity, time.Time, time.Time, error) {
		return nil, time.Time{}, time.Time{}, unauthenticated(msg, err)
	}
	tok, err := jwt.ParseString(token, opts...)
	if err != nil {
		switch {
		case errors.Is(err, jwt.TokenExpiredError()):
			return fail("token expired", err)
		case errors.Is(err, jwt.TokenNotYetValidError()):
			return fail("token not valid yet", err)
		case errors.Is(err, jwt.InvalidIssuerError()):
			return fail("token has the wrong issuer", err)
		case errors.Is(err, jwt.InvalidAudienceError()):
			return fail("token has the wrong audience", err)
		case errors.Is(err, errUnknownKID):
			return fail("token signed by an unknown key", err)
		case errors.Is(err, errCritHeader):
			return fail("token has a \"crit\" header; no critical extension is supported", err)
		}
		return fail("invalid token", err)
	}
	exp, ok := tok.Expiration()
	if !ok {
		return fail("token has no expiry", nil)
	}
	iat, hasIAT := tok.IssuedAt()
	if v.cfg.MaxLifetime > 0 {
		from := v.cfg.Now()
		if hasIAT {
			from = iat
		}
		if exp.Sub(from) > v.cfg.MaxLifetime {
			return fail(fmt.Sprintf("token lives longer than the %s allowed", v.cfg.MaxLifetime), nil)
		}
	}
	// Temporal's claim mapper refuses a token whose "sub" is not a string.
	var sub any
	if err := tok.Get("sub", &sub); err != nil {
		return fail("token has no subject (\"sub\")", nil)
	}
	subject, ok := sub.(string)
	if !ok || subject == "" {
		return fail("token subject (\"sub\") is not a string", nil)
	}
	var raw any
	if err := tok.Get(v.cfg.PermissionsClaim, &raw); err != nil {
		raw = nil // no permissions: every namespace is forbidden
	}
	perms, ignored := claimPermissions(raw, v.perms)
	if ignored > 0 {
		v.cfg.Logger.Debug("JWT: ignored permission entries that are not <namespace>:<role>", "subject", truncate.To(subject, 64), "ignored", ignored)
	}
	// The bounds inside which the clock-dependent checks pass: the
	// validator accepts iat and nbf up to Skew in the future, exp up to
	// Skew in the past.
	notBefore = time.Time{}
	if nbf, ok := tok.NotBefore(); ok {
		notBefore = nbf.Add(-v.cfg.Skew)
	}
	if hasIAT && iat.Add(-v.cfg.Skew).After(notBefore) {
		notBefore = iat.Add(-v.cfg.Skew)
	}
	return &Identity{Subject: subject, Method: "jwt", Permissions: perms}, notBefore, exp.Add(v.cfg.Skew), nil
}

// tokenHash is the SHA-256 of token, the token cache's key. Tokens up to
// 4 KiB (RS256 ones are under 1 KiB) are hashed from a copy on the stack:
// []byte(token) would put one on the heap on every request.
func tokenHash(token string) [32]byte {
	var buf [4 << 10]byte
	if len(token) <= len(buf) {
		return sha256.Sum256(append(buf[:0], token...))
	}
	return sha256.Sum256([]byte(token))
}

func unauthenticated(msg string, err error) *Error {
	return newError(http.StatusUnauthorized, "unauthenticated", msg, err)
}
