package vault

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// Defaults for [Config].
const (
	DefaultMount               = "transit"
	DefaultAppRoleMount        = "approle"
	DefaultKubernetesMount     = "kubernetes"
	DefaultKubernetesTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultTimeout             = 5 * time.Second
	DefaultMaxRetries          = 2
	DefaultRetryWait           = 250 * time.Millisecond
	// DefaultKeyPollInterval is how often the keyring reads the latest
	// version of the transit keys it seals with, so a rotation in Vault
	// reaches new payloads within this time.
	DefaultKeyPollInterval = 10 * time.Second

	// NamespacePlaceholder in Config.KeyName is replaced by the Temporal
	// namespace.
	NamespacePlaceholder = "{namespace}"

	// defaultNamespace is the Temporal namespace assumed when a caller
	// names none.
	defaultNamespace = "default"

	// maxBatch bounds the items of one transit/decrypt batch request.
	maxBatch = 1000
)

// Config configures a Vault transit keyring. Library code never reads the
// environment; cmd/codec-server maps VAULT_ADDR, VAULT_TOKEN, ... onto it.
// Set exactly one of Token, AppRoleRoleID or KubernetesRole.
type Config struct {
	Address   string // Vault address, e.g. https://vault:8200
	Token     string // a Vault token; or use AppRole / Kubernetes auth
	Namespace string // Vault Enterprise namespace (X-Vault-Namespace)
	CACert    string // PEM file of the CA that signed Vault's certificate

	Mount   string // transit mount path; default "transit"
	KeyName string // transit key name, or a template with {namespace}, e.g. "temporal-{namespace}"

	// PreviousKeys are earlier transit key names (or templates with
	// {namespace}) that still decrypt, e.g. after moving to a new key
	// name. Decryption is pinned to KeyName and these: a payload's key ID
	// naming any other transit key of the mount is refused with
	// keyring.ErrUnknownKey, so a payload cannot make the keyring use a key
	// it was not configured with. Default: none.
	PreviousKeys []string

	AppRoleMount    string // default "approle"
	AppRoleRoleID   string
	AppRoleSecretID string

	KubernetesMount     string // default "kubernetes"
	KubernetesRole      string
	KubernetesTokenPath string // default /var/run/secrets/kubernetes.io/serviceaccount/token

	Timeout    time.Duration     // per call; default 5s
	MaxRetries int               // default 2; -1 disables retries
	Transport  http.RoundTripper // optional, e.g. to count calls in tests
	Logger     *slog.Logger      // default slog.Default()

	// RetryWait is the wait before the first retry; it doubles for each
	// further retry (with jitter, at most 5s). Default 250ms.
	RetryWait time.Duration

	// KeyPollInterval is how often the latest version of each transit key
	// this keyring has sealed with is read (transit/keys/<key>, which the
	// token's policy must allow reading); when it grows, the keyring's
	// key generation (keyring.Rotating) changes and the codec stops
	// sealing under data keys of the older version. Default
	// DefaultKeyPollInterval (10s); negative turns polling off (rotations
	// then reach new payloads within the codec's DataKeyMaxAge).
	KeyPollInterval time.Duration
}

// Keyring is a keyring.Keyring on Vault transit. Data keys come from
// transit/datakey/plaintext/<key> and are unwrapped with batched
// transit/decrypt/<key> calls; the key-encryption key never leaves Vault.
// It is safe for concurrent use.
type Keyring struct {
	client      *api.Client // carries the token
	loginClient *api.Client // never carries a token; used to log in
	addr        string
	mount       string
	keyName     string // a name or a template
	templated   bool
	previous    []string // earlier names or templates that still decrypt
	timeout     time.Duration
	retryWait   time.Duration
	maxRetries  int
	logger      *slog.Logger

	auth     api.AuthMethod // nil for token auth
	authName string
	tokenGen atomic.Uint64 // counts logins, to log in once for many failing calls
	loginMu  sync.Mutex

	newSecret chan *api.Secret // a fresh login for the renewal loop
	bgCtx     context.Context
	bgCancel  context.CancelFunc
	bgDone    chan struct{}
	closeOnce sync.Once

	pollInterval time.Duration
	pollDone     chan struct{}
	gen          atomic.Uint64 // changes when a newer key version is seen
	versionMu    sync.Mutex
	versions     map[string]int // transit key name -> latest version seen
	pollFailing  map[string]bool
}

var (
	_ keyring.Keyring  = (*Keyring)(nil)
	_ keyring.Checker  = (*Keyring)(nil)
	_ keyring.Rotating = (*Keyring)(nil)
)

// New connects to Vault, logs in, starts renewing the token and checks
// that Vault is unsealed and the key readable (see [Keyring.Check]). Close
// stops token renewal.
func New(ctx context.Context, cfg Config) (*Keyring, error) {
	k, err := newKeyring(cfg)
	if err != nil {
		return nil, err
	}
	secret, err := k.start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	k.bgCtx, k.bgCancel = context.WithCancel(context.Background())
	k.bgDone = make(chan struct{})
	go k.renewLoop(secret)
	if k.pollInterval > 0 {
		k.pollDone = make(chan struct{})
		go k.pollLoop()
	}
	if err := k.Check(ctx); err != nil {
		k.Close()
		return nil, err
	}
	k.logger.Info("vault keyring ready", "address", k.addr, "mount", k.mount, "key", k.keyName, "auth", k.authName)
	return k, nil
}

// newKeyring validates cfg and builds the clients without calling Vault.
func newKeyring(cfg Config) (*Keyring, error) {
	k := &Keyring{
		addr:       cfg.Address,
		mount:      strings.Trim(cfg.Mount, "/"),
		keyName:    cfg.KeyName,
		timeout:    cfg.Timeout,
		retryWait:  cfg.RetryWait,
		maxRetries: cfg.MaxRetries,
		logger:     cfg.Logger,
		newSecret:  make(chan *api.Secret, 1),

		pollInterval: cfg.KeyPollInterval,
		versions:     make(map[string]int),
		pollFailing:  make(map[string]bool),
	}
	if k.pollInterval == 0 {
		k.pollInterval = DefaultKeyPollInterval
	}
	if k.mount == "" {
		k.mount = DefaultMount
	}
	if k.timeout == 0 {
		k.timeout = DefaultTimeout
	}
	if k.retryWait == 0 {
		k.retryWait = DefaultRetryWait
	}
	switch {
	case k.maxRetries == 0:
		k.maxRetries = DefaultMaxRetries
	case k.maxRetries < 0:
		k.maxRetries = 0
	}
	if k.logger == nil {
		k.logger = slog.Default()
	}
	if k.timeout < 0 || k.retryWait < 0 {
		return nil, errors.New("vault: negative Timeout or RetryWait")
	}
	u, err := url.Parse(cfg.Address)
	if cfg.Address == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("vault: address %q is not an http:// or https:// URL", cfg.Address)
	}
	if err := validMount(k.mount); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if cfg.KeyName == "" {
		return nil, errors.New("vault: no transit key name")
	}
	k.templated = strings.Contains(cfg.KeyName, NamespacePlaceholder)
	if err := validName(strings.ReplaceAll(cfg.KeyName, NamespacePlaceholder, "x")); err != nil {
		return nil, fmt.Errorf("vault: key name template %q: %w", cfg.KeyName, err)
	}
	for _, p := range cfg.PreviousKeys {
		if err := validName(strings.ReplaceAll(p, NamespacePlaceholder, "x")); err != nil {
			return nil, fmt.Errorf("vault: previous key %q: %w", p, err)
		}
		if p != cfg.KeyName {
			k.previous = append(k.previous, p)
		}
	}

	var methods []string
	if cfg.Token != "" {
		methods = append(methods, "token")
	}
	if cfg.AppRoleRoleID != "" {
		methods = append(methods, "approle")
	}
	if cfg.KubernetesRole != "" {
		methods = append(methods, "kubernetes")
	}
	if len(methods) != 1 {
		return nil, fmt.Errorf("vault: set exactly one of a token, an AppRole role ID or a Kubernetes role; got %d (%s)", len(methods), strings.Join(methods, ", "))
	}
	k.authName = methods[0]
	if k.auth, err = authMethod(cfg); err != nil {
		return nil, err
	}

	httpClient, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	if k.client, err = newAPIClient(cfg, httpClient); err != nil {
		return nil, err
	}
	if k.loginClient, err = newAPIClient(cfg, httpClient); err != nil {
		return nil, err
	}
	return k, nil
}

// newHTTPClient builds the HTTP client for Vault. With CACert, Vault's
// certificate must be signed by that CA.
func newHTTPClient(cfg Config) (*http.Client, error) {
	var rt http.RoundTripper
	switch t := cfg.Transport.(type) {
	case nil:
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		rt = base
	case *http.Transport:
		base := t.Clone()
		if base.TLSClientConfig == nil {
			base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		rt = base
	default:
		if cfg.CACert != "" {
			return nil, errors.New("vault: CACert needs Transport to be nil or an *http.Transport")
		}
		rt = t
	}
	hc := &http.Client{
		Transport: rt,
		// The api package follows Vault's redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if cfg.CACert != "" {
		conf := &api.Config{HttpClient: hc}
		if err := conf.ConfigureTLS(&api.TLSConfig{CACert: cfg.CACert}); err != nil {
			return nil, fmt.Errorf("vault: CA certificate %s: %w", cfg.CACert, err)
		}
	}
	return hc, nil
}

// newAPIClient returns a vault/api client without retries or timeouts of
// its own (the keyring applies them) and without the token, namespace and
// headers that api.NewClient takes from the environment.
func newAPIClient(cfg Config, hc *http.Client) (*api.Client, error) {
	c, err := api.NewClient(&api.Config{Address: cfg.Address, HttpClient: hc, MaxRetries: 0})
	if err != nil {
		return nil, fmt.Errorf("vault: client: %w", err)
	}
	c.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	c.ClearToken()
	if cfg.Namespace != "" {
		c.SetNamespace(cfg.Namespace)
	}
	return c, nil
}

// Close stops background token renewal. It does not revoke the token.
func (k *Keyring) Close() error {
	k.closeOnce.Do(func() {
		if k.bgCancel != nil {
			k.bgCancel()
			<-k.bgDone
			if k.pollDone != nil {
				<-k.pollDone
			}
		}
	})
	return nil
}

// KeyName returns the transit key used for namespace: the configured key
// name with {namespace} replaced. An empty namespace means "default".
func (k *Keyring) KeyName(namespace string) (string, error) {
	if !k.templated {
		return k.keyName, nil
	}
	if namespace == "" {
		namespace = defaultNamespace
	}
	name := strings.ReplaceAll(k.keyName, NamespacePlaceholder, namespace)
	if err := validName(name); err != nil {
		return "", fmt.Errorf("vault: namespace %q gives no valid transit key name: %v: %w", namespace, err, keyring.ErrPermission)
	}
	return name, nil
}

// NewDataKey asks Vault for a fresh 256-bit data key and its wrapped form
// under the namespace's transit key (transit/datakey/plaintext/<key>). The
// key ID records the mount, the key and the key version that wrapped it.
func (k *Keyring) NewDataKey(ctx context.Context, namespace string) (keyring.DataKey, error) {
	name, err := k.KeyName(namespace)
	if err != nil {
		return keyring.DataKey{}, err
	}
	o := op{name: "datakey", key: name}
	r, err := k.call(ctx, o, http.MethodPut, k.mount+"/datakey/plaintext/"+name, map[string]any{"bits": keyring.DataKeySize * 8}, k.maxRetries, false)
	if err != nil {
		return keyring.DataKey{}, err
	}
	var d struct {
		Plaintext  string `json:"plaintext"`
		Ciphertext string `json:"ciphertext"`
	}
	if err := json.Unmarshal(r.data, &d); err != nil {
		return keyring.DataKey{}, fmt.Errorf("vault: %s: malformed answer", o)
	}
	v, ok := ciphertextVersion([]byte(d.Ciphertext))
	if !ok {
		return keyring.DataKey{}, fmt.Errorf("vault: %s: answer has no valid \"vault:vN:\" ciphertext", o)
	}
	dek, err := base64.StdEncoding.DecodeString(d.Plaintext)
	if err != nil || len(dek) != keyring.DataKeySize {
		return keyring.DataKey{}, fmt.Errorf("vault: %s: data key is %d bytes, want %d", o, len(dek), keyring.DataKeySize)
	}
	k.sawVersion(name, v)
	id := KeyID{Mount: k.mount, Key: name, Version: v}
	// A key ID that ParseKeyID would refuse (a mount and key name too long
	// together) would seal payloads that never decode: refuse it here.
	if _, err := ParseKeyID(id.String()); err != nil {
		clear(dek)
		return keyring.DataKey{}, fmt.Errorf("vault: %s: the key ID of mount %q and key %q cannot be stored: %v", o, k.mount, name, err)
	}
	return keyring.DataKey{KeyID: id.String(), Wrapped: []byte(d.Ciphertext), Key: keyring.NewSecret(dek)}, nil
}

// UnwrapDataKeys unwraps data keys with one transit/decrypt call per
// distinct transit key, sending all of that key's wrapped data keys as one
// batch_input. With a key-name template, a key ID whose key is not the
// namespace's key is refused with keyring.ErrPermission: reading namespace
// A's payloads must not give access to B's. Without a template, a key ID
// naming a transit key other than the configured one or one of
// Config.PreviousKeys is refused with keyring.ErrUnknownKey: a payload
// must not choose an arbitrary key of the mount. Key IDs naming another
// mount are refused with keyring.ErrUnknownKey.
func (k *Keyring) UnwrapDataKeys(ctx context.Context, namespace string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	out := make([]keyring.Secret, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	want := ""
	if k.templated {
		var err error
		if want, err = k.KeyName(namespace); err != nil {
			return nil, err
		}
	}
	allowed := k.previousNames(namespace)
	groups := map[string][]int{} // transit key name -> indexes
	var order []string
	for i, w := range keys {
		id, err := ParseKeyID(w.KeyID)
		if err != nil {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("vault: key %q: %v: %w", truncate.To(w.KeyID, maxReasonLen), err, keyring.ErrUnknownKey)}
		}
		if id.Mount != k.mount {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("vault: key %q: names transit mount %q, this keyring uses %q: %w", w.KeyID, id.Mount, k.mount, keyring.ErrUnknownKey)}
		}
		switch {
		case slices.Contains(allowed, id.Key):
		case k.templated && id.Key != want:
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("vault: key %q: transit key %q is not the key of namespace %q (%q): %w", w.KeyID, id.Key, namespaceOrDefault(namespace), want, keyring.ErrPermission)}
		case !k.templated && id.Key != k.keyName:
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("vault: key %q: transit key %q is neither the configured key %q nor one of its previous keys: %w", w.KeyID, id.Key, k.keyName, keyring.ErrUnknownKey)}
		}
		v, ok := ciphertextVersion(w.Wrapped)
		if !ok {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("vault: key %q: wrapped data key is not a transit ciphertext: %w", w.KeyID, keyring.ErrUnwrap)}
		}
		if v != id.Version {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("vault: key %q: wrapped data key is from key version %d: %w", w.KeyID, v, keyring.ErrUnwrap)}
		}
		if _, seen := groups[id.Key]; !seen {
			order = append(order, id.Key)
		}
		groups[id.Key] = append(groups[id.Key], i)
	}
	for _, name := range order {
		idx := groups[name]
		for lo := 0; lo < len(idx); lo += maxBatch {
			if err := k.decryptBatch(ctx, name, keys, idx[lo:min(lo+maxBatch, len(idx))], out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// previousNames returns Config.PreviousKeys with {namespace} replaced,
// leaving out names that are not valid for namespace.
func (k *Keyring) previousNames(namespace string) []string {
	if len(k.previous) == 0 {
		return nil
	}
	out := make([]string, 0, len(k.previous))
	for _, p := range k.previous {
		name := strings.ReplaceAll(p, NamespacePlaceholder, namespaceOrDefault(namespace))
		if validName(name) == nil {
			out = append(out, name)
		}
	}
	return out
}

func namespaceOrDefault(ns string) string {
	if ns == "" {
		return defaultNamespace
	}
	return ns
}

// decryptBatch unwraps keys[i] for i in idx with one transit/decrypt call
// and stores them in out.
func (k *Keyring) decryptBatch(ctx context.Context, name string, keys []keyring.WrappedKey, idx []int, out []keyring.Secret) error {
	type item struct {
		Ciphertext string `json:"ciphertext"`
	}
	batch := make([]item, len(idx))
	for j, i := range idx {
		batch[j] = item{Ciphertext: string(keys[i].Wrapped)}
	}
	o := op{name: "decrypt", key: name}
	r, err := k.call(ctx, o, http.MethodPut, k.mount+"/decrypt/"+name, map[string]any{"batch_input": batch}, k.maxRetries, true)
	if err != nil {
		if errors.Is(err, keyring.ErrUnknownKey) || errors.Is(err, keyring.ErrPermission) || errors.Is(err, keyring.ErrUnavailable) {
			return err
		}
		// Any other refusal of the whole batch (400) is about the input.
		return fmt.Errorf("%w: %w", err, keyring.ErrUnwrap)
	}
	var d struct {
		BatchResults []struct {
			Plaintext string `json:"plaintext"`
			Error     string `json:"error"`
		} `json:"batch_results"`
	}
	if err := json.Unmarshal(r.data, &d); err != nil || len(d.BatchResults) != len(idx) {
		return fmt.Errorf("vault: %s: malformed batch answer (%d results for %d items)", o, len(d.BatchResults), len(idx))
	}
	for j, res := range d.BatchResults {
		id := keys[idx[j]].KeyID
		if res.Error != "" {
			reason := reasonText([]string{res.Error})
			sentinel := keyring.ErrUnwrap
			if strings.Contains(reason, "too new") || strings.Contains(reason, "disallowed by policy") || strings.Contains(reason, "too old") {
				// The key version is gone or below min_decryption_version.
				sentinel = keyring.ErrUnknownKey
			}
			return &keyring.KeyError{Index: idx[j], Err: fmt.Errorf("vault: %s: key %q: vault refused the item: %s: %w", o, id, reason, sentinel)}
		}
		dek, err := base64.StdEncoding.DecodeString(res.Plaintext)
		if err != nil || len(dek) != keyring.DataKeySize {
			return &keyring.KeyError{Index: idx[j], Err: fmt.Errorf("vault: %s: key %q: data key is %d bytes, want %d: %w", o, id, len(dek), keyring.DataKeySize, keyring.ErrUnwrap)}
		}
		out[idx[j]] = keyring.NewSecret(dek)
	}
	return nil
}

// Check reports whether the keyring is usable now, for readiness probes:
// Vault answers, is initialized and unsealed, and the token can read the
// transit key (transit/keys/<key>). With a key-name template, where the
// keys depend on the namespace, it checks the token instead
// (auth/token/lookup-self). Check makes no retries.
func (k *Keyring) Check(ctx context.Context) error {
	hctx, cancel := context.WithTimeout(ctx, k.timeout)
	h, err := k.client.Sys().HealthWithContext(hctx)
	cancel()
	if err != nil {
		f := classify(0, nil, err)
		if f.sentinel == nil {
			f.sentinel = keyring.ErrUnavailable
		}
		return k.failure(op{name: "health"}, f, ctx.Err())
	}
	switch {
	case !h.Initialized:
		return fmt.Errorf("vault: health: vault at %s is not initialized: %w", k.addr, keyring.ErrUnavailable)
	case h.Sealed:
		return fmt.Errorf("vault: health: vault at %s is sealed: %w", k.addr, keyring.ErrUnavailable)
	}
	if k.templated {
		_, err := k.call(ctx, op{name: "token lookup"}, http.MethodGet, "auth/token/lookup-self", nil, 0, false)
		return err
	}
	r, err := k.call(ctx, op{name: "read key", key: k.keyName}, http.MethodGet, k.mount+"/keys/"+k.keyName, nil, 0, false)
	if err != nil {
		return err
	}
	var d struct {
		SupportsDecryption bool `json:"supports_decryption"`
		Derived            bool `json:"derived"`
	}
	if err := json.Unmarshal(r.data, &d); err != nil {
		return fmt.Errorf("vault: read key %q: malformed answer", k.keyName)
	}
	if !d.SupportsDecryption || d.Derived {
		return fmt.Errorf("vault: key %q cannot wrap data keys: it must be a non-derived encryption key such as aes256-gcm96", k.keyName)
	}
	return nil
}
