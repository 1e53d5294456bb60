package awskms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// Defaults for [Config].
const (
	// DefaultTimeout bounds one keyring call, the SDK's retries included.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxRetries is how often a throttled or failed KMS request is
	// retried.
	DefaultMaxRetries = 3
	// DefaultConcurrency bounds the KMS requests one keyring has in flight.
	DefaultConcurrency = 16

	// NamespacePlaceholder in Config.Key and Config.PreviousKeys is
	// replaced by the Temporal namespace.
	NamespacePlaceholder = "{namespace}"
)

// The encryption context every data key is wrapped with: KMS binds it to
// the wrapped key and refuses to unwrap it under any other context, so a
// data key wrapped for one namespace cannot be unwrapped for another, and
// IAM policies can grant a key per namespace with a
// kms:EncryptionContext:namespace condition.
const (
	// ContextNamespace holds the Temporal namespace ("default" when the
	// caller names none).
	ContextNamespace = "namespace"
	// ContextFormat holds FormatVersion, the version of this keyring's wrap
	// format (the "v1" of [KeyIDPrefix]).
	ContextFormat = "envelope-format"
	FormatVersion = "1"
)

const (
	// attemptTimeout bounds one HTTP attempt, so a hung connection leaves
	// time for a retry within the call's deadline.
	attemptTimeout = 5 * time.Second
	// maxRetryWait bounds the SDK's backoff between two attempts.
	maxRetryWait = 5 * time.Second
	// resolveTTL is how long an alias's key ARN is reused for pinning.
	resolveTTL = 5 * time.Minute
	// minRefresh is the shortest time between two lookups of the same
	// alias, so payloads naming foreign keys cannot make the keyring call
	// DescribeKey over and over.
	minRefresh = 10 * time.Second
	// maxResolved bounds the alias cache (one entry per namespace with a
	// key template).
	maxResolved = 4096

	defaultNamespace = "default"
)

// Config configures an AWS KMS keyring. Library code never reads the
// environment: commands load AWS with the SDK's config.LoadDefaultConfig
// (the default credential chain, region and AWS_ENDPOINT_URL_KMS).
type Config struct {
	// AWS is the SDK configuration: credentials, region, endpoint
	// (BaseEndpoint) and HTTP client.
	AWS aws.Config

	// Key is the KMS key that wraps new data keys: a key ARN, key ID, alias
	// name ("alias/NAME") or alias ARN, or a template with {namespace}
	// (e.g. "alias/temporal-{namespace}") for a key per namespace.
	Key string

	// PreviousKeys are earlier keys (or templates) that still decrypt.
	// Decryption is pinned to Key and these: a payload whose key ID names
	// any other KMS key is refused before KMS is called. Default: none.
	PreviousKeys []string

	// Timeout bounds one keyring call, the SDK's retries and backoff
	// included. Default DefaultTimeout (10s).
	Timeout time.Duration
	// MaxRetries is how often a throttled (ThrottlingException) or
	// transiently failed request (5xx, network) is retried, with the SDK's
	// exponential backoff with jitter. Default DefaultMaxRetries (3); -1
	// disables retries.
	MaxRetries int
	// Concurrency bounds the KMS requests in flight at once over all calls.
	// Default DefaultConcurrency (16).
	Concurrency int

	Logger *slog.Logger // default slog.Default()
}

// Keyring is a keyring.Keyring on AWS KMS: data keys come from
// GenerateDataKey and are unwrapped with Decrypt, both with the
// namespace in the encryption context; the KMS key never leaves KMS. It is
// safe for concurrent use.
type Keyring struct {
	client    *kms.Client
	key       string // a key or a template
	templated bool
	previous  []string // earlier keys or templates that still decrypt
	timeout   time.Duration
	sem       chan struct{}
	logger    *slog.Logger

	mu       sync.Mutex
	resolved map[string]resolution // key or alias (templates filled in) -> ARN
}

// resolution is the key ARN an alias or key ID pointed at.
type resolution struct {
	arn    string
	at     time.Time
	forced bool // looked up again because a payload named another key
}

var (
	_ keyring.Keyring = (*Keyring)(nil)
	_ keyring.Checker = (*Keyring)(nil)
)

// New builds a KMS client from cfg and checks that the key is usable (see
// [Keyring.Check]).
func New(ctx context.Context, cfg Config) (*Keyring, error) {
	k, err := newKeyring(cfg)
	if err != nil {
		return nil, err
	}
	if err := k.Check(ctx); err != nil {
		return nil, err
	}
	k.logger.Info("aws kms keyring ready", "key", k.key, "previous_keys", k.previous, "region", cfg.AWS.Region)
	return k, nil
}

// newKeyring validates cfg and builds the client without calling KMS.
func newKeyring(cfg Config) (*Keyring, error) {
	k := &Keyring{
		key:      cfg.Key,
		timeout:  cfg.Timeout,
		logger:   cfg.Logger,
		resolved: make(map[string]resolution),
	}
	if k.timeout == 0 {
		k.timeout = DefaultTimeout
	}
	retries := cfg.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultMaxRetries
	case retries < 0:
		retries = 0
	}
	conc := cfg.Concurrency
	if conc == 0 {
		conc = DefaultConcurrency
	}
	if k.logger == nil {
		k.logger = slog.Default()
	}
	if k.timeout < 0 || conc < 0 {
		return nil, errors.New("awskms: negative Timeout or Concurrency")
	}
	k.sem = make(chan struct{}, conc)
	if cfg.Key == "" {
		return nil, errors.New("awskms: no KMS key")
	}
	k.templated = strings.Contains(cfg.Key, NamespacePlaceholder)
	if err := validKey(strings.ReplaceAll(cfg.Key, NamespacePlaceholder, "x")); err != nil {
		return nil, fmt.Errorf("awskms: key %v", err)
	}
	for _, p := range cfg.PreviousKeys {
		if err := validKey(strings.ReplaceAll(p, NamespacePlaceholder, "x")); err != nil {
			return nil, fmt.Errorf("awskms: previous key %v", err)
		}
		if p != cfg.Key && !slices.Contains(k.previous, p) {
			k.previous = append(k.previous, p)
		}
	}
	if cfg.AWS.Region == "" {
		return nil, errors.New("awskms: no AWS region (set AWS_REGION or a profile's region)")
	}
	awsCfg := cfg.AWS.Copy()
	switch hc := awsCfg.HTTPClient.(type) {
	case nil:
		awsCfg.HTTPClient = awshttp.NewBuildableClient().WithTimeout(min(attemptTimeout, k.timeout))
	case *awshttp.BuildableClient:
		awsCfg.HTTPClient = hc.WithTimeout(min(attemptTimeout, k.timeout))
	}
	k.client = kms.NewFromConfig(awsCfg, func(o *kms.Options) {
		// The SDK's standard retryer is AWS's retry policy for KMS: it
		// retries ThrottlingException and the other throttling codes, 5xx
		// and network failures with exponential backoff and jitter. The
		// call's deadline (Timeout) bounds it.
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = retries + 1
			so.MaxBackoff = maxRetryWait
		})
	})
	return k, nil
}

// KeyFor returns the KMS key used for namespace: Config.Key with
// {namespace} replaced. An empty namespace means "default". A namespace
// that cannot be part of a KMS alias name (KMS allows letters, digits, '_'
// and '-'; '.' and '/' are refused here) is refused with
// keyring.ErrPermission.
func (k *Keyring) KeyFor(namespace string) (string, error) {
	return fill(k.key, namespace)
}

// fill replaces {namespace} in key.
func fill(key, namespace string) (string, error) {
	if !strings.Contains(key, NamespacePlaceholder) {
		return key, nil
	}
	ns := namespaceOrDefault(namespace)
	if !isName(ns, "_-") {
		return "", fmt.Errorf("awskms: namespace %q cannot name a KMS alias (letters, digits, '_' and '-' only): %w", truncate.To(ns, maxReasonLen), keyring.ErrPermission)
	}
	name := strings.ReplaceAll(key, NamespacePlaceholder, ns)
	if err := validKey(name); err != nil {
		return "", fmt.Errorf("awskms: namespace %q gives no valid KMS key: %v: %w", truncate.To(ns, maxReasonLen), err, keyring.ErrPermission)
	}
	return name, nil
}

func namespaceOrDefault(ns string) string {
	if ns == "" {
		return defaultNamespace
	}
	return ns
}

// EncryptionContext returns the encryption context data keys of namespace
// are wrapped with: {"namespace": <namespace or "default">,
// "envelope-format": "1"}.
func EncryptionContext(namespace string) map[string]string {
	return map[string]string{ContextNamespace: namespaceOrDefault(namespace), ContextFormat: FormatVersion}
}

// acquire waits for a free slot of the keyring's concurrency bound.
func (k *Keyring) acquire(ctx context.Context) error {
	select {
	case k.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *Keyring) release() { <-k.sem }

// NewDataKey asks KMS for a fresh 256-bit data key wrapped under the
// namespace's KMS key (GenerateDataKey with the namespace in the
// encryption context). The key ID records the key's ARN.
func (k *Keyring) NewDataKey(ctx context.Context, namespace string) (keyring.DataKey, error) {
	name, err := k.KeyFor(namespace)
	if err != nil {
		return keyring.DataKey{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	if err := k.acquire(ctx); err != nil {
		return keyring.DataKey{}, failure("GenerateDataKey", name, err)
	}
	out, err := k.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(name),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: EncryptionContext(namespace),
	})
	k.release()
	if err != nil {
		return keyring.DataKey{}, k.explain(ctx, "GenerateDataKey", name, err)
	}
	if len(out.Plaintext) != keyring.DataKeySize {
		clear(out.Plaintext)
		return keyring.DataKey{}, fmt.Errorf("awskms: GenerateDataKey with key %q: data key is %d bytes, want %d", name, len(out.Plaintext), keyring.DataKeySize)
	}
	arn := aws.ToString(out.KeyId)
	id := KeyID{ARN: arn}
	if _, err := ParseKeyID(id.String()); err != nil || len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > maxWrapped {
		clear(out.Plaintext)
		return keyring.DataKey{}, fmt.Errorf("awskms: GenerateDataKey with key %q: KMS answered key %q and a %d-byte wrapped key, which payloads cannot carry", name, truncate.To(arn, maxReasonLen), len(out.CiphertextBlob))
	}
	k.remember(name, arn, false)
	return keyring.DataKey{KeyID: id.String(), Wrapped: out.CiphertextBlob, Key: keyring.NewSecret(out.Plaintext)}, nil
}

// UnwrapDataKeys unwraps data keys with one KMS Decrypt per distinct
// wrapped key (KMS has no batch decrypt), at most Config.Concurrency at a
// time, each with the namespace's encryption context and the key ARN the
// key ID names. Key IDs are checked first, before any Decrypt: a key ID
// naming a KMS key that is neither the namespace's key nor one of
// Config.PreviousKeys is refused, with keyring.ErrPermission when the key
// is a template (reading namespace A's payloads must not give access to
// B's) and keyring.ErrUnknownKey otherwise.
func (k *Keyring) UnwrapDataKeys(ctx context.Context, namespace string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	out := make([]keyring.Secret, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	type job struct {
		arn string
		at  []int // indexes in keys with this wrapped key
	}
	var jobs []*job
	seen := make(map[string]*job)
	var allowed map[string]bool
	for i, w := range keys {
		id, err := ParseKeyID(w.KeyID)
		if err != nil {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("awskms: key %q: %v: %w", truncate.To(w.KeyID, maxReasonLen), err, keyring.ErrUnknownKey)}
		}
		if len(w.Wrapped) == 0 || len(w.Wrapped) > maxWrapped {
			return nil, &keyring.KeyError{Index: i, Err: fmt.Errorf("awskms: key %q: wrapped data key is %d bytes, want 1 to %d: %w", w.KeyID, len(w.Wrapped), maxWrapped, keyring.ErrUnwrap)}
		}
		if !allowed[id.ARN] {
			if allowed, err = k.pinned(ctx, namespace, id.ARN); err != nil {
				return nil, &keyring.KeyError{Index: i, Err: err}
			}
			if !allowed[id.ARN] {
				return nil, &keyring.KeyError{Index: i, Err: k.refusal(namespace, w.KeyID)}
			}
		}
		d := id.ARN + "\x00" + string(w.Wrapped)
		if j := seen[d]; j != nil {
			j.at = append(j.at, i)
			continue
		}
		j := &job{arn: id.ARN, at: []int{i}}
		seen[d] = j
		jobs = append(jobs, j)
	}

	encCtx := EncryptionContext(namespace)
	errs := make([]error, len(jobs))
	cause := make([]bool, len(jobs)) // errs[n] is not a cancellation
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for n, j := range jobs {
		if err := k.acquire(ctx); err != nil {
			errs[n] = failure("Decrypt", KeyID{ARN: j.arn}.String(), err)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer k.release()
			w := keys[j.at[0]]
			res, err := k.client.Decrypt(ctx, &kms.DecryptInput{
				CiphertextBlob:    w.Wrapped,
				KeyId:             aws.String(j.arn),
				EncryptionContext: encCtx,
			})
			switch {
			case err != nil:
				errs[n], cause[n] = k.explain(ctx, "Decrypt", w.KeyID, err), !errors.Is(err, context.Canceled)
			case aws.ToString(res.KeyId) != j.arn:
				clear(res.Plaintext)
				errs[n], cause[n] = fmt.Errorf("awskms: Decrypt with key %q: KMS unwrapped it with key %q: %w", w.KeyID, truncate.To(aws.ToString(res.KeyId), maxReasonLen), keyring.ErrUnwrap), true
			case len(res.Plaintext) != keyring.DataKeySize:
				clear(res.Plaintext)
				errs[n], cause[n] = fmt.Errorf("awskms: Decrypt with key %q: data key is %d bytes, want %d: %w", w.KeyID, len(res.Plaintext), keyring.DataKeySize, keyring.ErrUnwrap), true
			default:
				for m, i := range j.at {
					b := res.Plaintext
					if m > 0 {
						b = slices.Clone(b) // each caller may wipe its own
					}
					out[i] = keyring.NewSecret(b)
				}
				return
			}
			stop() // one failure fails the call: spare KMS the rest
		}()
	}
	wg.Wait()
	if i, err := firstFailure(errs, cause, func(n int) int { return jobs[n].at[0] }); err != nil {
		for _, s := range out {
			clear(s.UnsafeBytes())
		}
		return nil, &keyring.KeyError{Index: i, Err: err}
	}
	return out, nil
}

// firstFailure returns the lowest payload index among errs and its error,
// preferring a failure that caused the others' cancellation to the
// cancellations.
func firstFailure(errs []error, cause []bool, index func(n int) int) (int, error) {
	var first error
	at, firstCause := 0, false
	for n, err := range errs {
		if err == nil {
			continue
		}
		i := index(n)
		if first == nil || cause[n] && !firstCause || cause[n] == firstCause && i < at {
			first, at, firstCause = err, i, cause[n]
		}
	}
	return at, first
}

// refusal is the error for a key ID that names a KMS key this keyring was
// not configured with.
func (k *Keyring) refusal(namespace, keyID string) error {
	if k.templated {
		want, _ := k.KeyFor(namespace)
		return fmt.Errorf("awskms: key %q: not the KMS key of namespace %q (%q) nor one of its previous keys: %w", keyID, namespaceOrDefault(namespace), want, keyring.ErrPermission)
	}
	return fmt.Errorf("awskms: key %q: neither the configured KMS key %q nor one of its previous keys: %w", keyID, k.key, keyring.ErrUnknownKey)
}

// pinned returns the ARNs of the keys namespace may decrypt with: Key and
// PreviousKeys, templates filled in and aliases resolved. Key ARNs need no
// call; aliases and key IDs are looked up with DescribeKey and cached.
// When arn is not among them, aliases looked up more than minRefresh ago
// are looked up again (an alias may have moved to a new key). A payload's
// key is never looked up: only configured ones.
func (k *Keyring) pinned(ctx context.Context, namespace, arn string) (map[string]bool, error) {
	var names []string
	for _, t := range append([]string{k.key}, k.previous...) {
		name, err := fill(t, namespace)
		if err != nil {
			if t == k.key {
				return nil, err
			}
			continue // a previous template this namespace cannot fill
		}
		names = append(names, name)
	}
	allowed, err := k.resolveAll(ctx, names, false)
	if err != nil || allowed[arn] || !slices.ContainsFunc(names, func(n string) bool { return !isKeyARN(n) }) {
		return allowed, err
	}
	return k.resolveAll(ctx, names, true)
}

// resolveAll resolves names to key ARNs. A name KMS does not know pins
// nothing; any other failure is returned, as then no one can tell whether
// a key is pinned.
func (k *Keyring) resolveAll(ctx context.Context, names []string, refresh bool) (map[string]bool, error) {
	allowed := make(map[string]bool, len(names))
	for _, name := range names {
		a, err := k.resolve(ctx, name, refresh)
		switch {
		case err == nil:
			allowed[a] = true
		case errors.Is(err, keyring.ErrUnknownKey):
		default:
			return nil, err
		}
	}
	return allowed, nil
}

// resolve returns the ARN of the key name names. With refresh, the lookup
// is repeated unless the cached one was itself such a repeat less than
// minRefresh ago: payloads naming foreign keys cost at most one DescribeKey
// per alias per minRefresh.
func (k *Keyring) resolve(ctx context.Context, name string, refresh bool) (string, error) {
	if isKeyARN(name) {
		return name, nil
	}
	k.mu.Lock()
	r, ok := k.resolved[name]
	k.mu.Unlock()
	age := time.Since(r.at)
	if ok && (age < resolveTTL && !refresh || r.forced && age < minRefresh) {
		return r.arn, nil
	}
	md, err := k.describe(ctx, name)
	if err != nil {
		return "", err
	}
	arn := aws.ToString(md.Arn)
	if !isKeyARN(arn) {
		return "", fmt.Errorf("awskms: DescribeKey with key %q: KMS answered no key ARN", name)
	}
	k.remember(name, arn, refresh)
	return arn, nil
}

// remember records that name points at arn now.
func (k *Keyring) remember(name, arn string, forced bool) {
	if isKeyARN(name) {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.resolved) >= maxResolved {
		clear(k.resolved)
	}
	k.resolved[name] = resolution{arn: arn, at: time.Now(), forced: forced}
}

// describe calls DescribeKey.
func (k *Keyring) describe(ctx context.Context, name string) (*types.KeyMetadata, error) {
	if err := k.acquire(ctx); err != nil {
		return nil, failure("DescribeKey", name, err)
	}
	defer k.release()
	out, err := k.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)})
	if err != nil {
		return nil, failure("DescribeKey", name, err)
	}
	if out.KeyMetadata == nil {
		return nil, fmt.Errorf("awskms: DescribeKey with key %q: KMS answered no key metadata", name)
	}
	return out.KeyMetadata, nil
}

// explain builds the error of a failed GenerateDataKey or Decrypt. When KMS
// refused the key itself (disabled, pending deletion, or access denied,
// which is what some KMS implementations answer for a key pending
// deletion), it asks DescribeKey why, so the error says "pending deletion"
// and when instead of a bare refusal.
func (k *Keyring) explain(ctx context.Context, operation, key string, err error) error {
	base := failure(operation, key, err)
	if !errors.Is(base, keyring.ErrUnknownKey) && !errors.Is(base, keyring.ErrPermission) {
		return base
	}
	name := key
	if id, perr := ParseKeyID(key); perr == nil {
		name = id.ARN
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(attemptTimeout, k.timeout))
	defer cancel()
	out, derr := k.client.DescribeKey(dctx, &kms.DescribeKeyInput{KeyId: aws.String(name)}, func(o *kms.Options) {
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 1)
	})
	if derr != nil || out.KeyMetadata == nil {
		return base
	}
	if serr := stateError(operation, key, out.KeyMetadata); serr != nil {
		return serr
	}
	return base
}

// stateError explains a key KMS will not use because of its state (pending
// deletion, disabled), or returns nil.
func stateError(operation, key string, md *types.KeyMetadata) error {
	switch md.KeyState {
	case types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
		when := "soon"
		if md.DeletionDate != nil {
			when = "on " + md.DeletionDate.UTC().Format(time.DateOnly)
		}
		return fmt.Errorf("awskms: %s with key %q: the KMS key is pending deletion (to be deleted %s); cancel the deletion (CancelKeyDeletion) to read payloads wrapped under it: %w", operation, key, when, keyring.ErrUnknownKey)
	case types.KeyStateDisabled:
		return fmt.Errorf("awskms: %s with key %q: the KMS key is disabled; enable it (EnableKey) to use it: %w", operation, key, keyring.ErrUnknownKey)
	}
	return nil
}

// Check reports whether the keyring is usable now, for readiness probes:
// KMS answers DescribeKey for the configured key, and the key is enabled,
// symmetric and for encryption. With a key template, where the keys depend
// on the namespace, it describes the key of namespace "default" and counts
// a missing key as ready (KMS answered and accepted the credentials). Check
// makes no retries; the codec server caches its verdict.
func (k *Keyring) Check(ctx context.Context) error {
	name, err := k.KeyFor(defaultNamespace)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, min(attemptTimeout, k.timeout))
	defer cancel()
	out, err := k.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)}, func(o *kms.Options) {
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 1)
	})
	if err != nil {
		ferr := failure("DescribeKey", name, err)
		if k.templated && errors.Is(ferr, keyring.ErrUnknownKey) {
			return nil
		}
		return ferr
	}
	md := out.KeyMetadata
	if md == nil {
		return fmt.Errorf("awskms: DescribeKey with key %q: KMS answered no key metadata: %w", name, keyring.ErrUnavailable)
	}
	switch {
	case stateError("DescribeKey", name, md) != nil:
		return stateError("DescribeKey", name, md)
	case md.KeyState != types.KeyStateEnabled:
		return fmt.Errorf("awskms: DescribeKey with key %q: the KMS key is %s, not Enabled: %w", name, md.KeyState, keyring.ErrUnavailable)
	case md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || md.KeySpec != types.KeySpecSymmetricDefault:
		return fmt.Errorf("awskms: key %q cannot wrap data keys: it is a %s key for %s, want a SYMMETRIC_DEFAULT key for ENCRYPT_DECRYPT", name, md.KeySpec, md.KeyUsage)
	}
	k.remember(name, aws.ToString(md.Arn), false)
	return nil
}
