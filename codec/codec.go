package codec

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec/internal/envelope"
	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// Errors for payloads that claim to be sealed by this codec but cannot be
// opened. Errors from the keyring (keyring.ErrUnknownKey,
// keyring.ErrUnavailable, ...) are passed through wrapped. Test with
// [errors.Is].
var (
	// ErrMalformed means a sealed payload's metadata or data is missing,
	// truncated or out of bounds.
	ErrMalformed = envelope.ErrMalformed
	// ErrUnsupported means a payload says it is encrypted but names no
	// format, or a format version this codec does not know.
	ErrUnsupported = envelope.ErrUnsupported
	// ErrDecrypt means authentication failed: the data or the metadata it
	// is bound to was changed, or the data key is not the one it was sealed
	// with. A wrong key and tampering are deliberately indistinguishable.
	ErrDecrypt = envelope.ErrDecrypt
	// ErrNamespace means an envelope/v2 payload was sealed for another
	// namespace than the one decoding it, and Options.NamespaceAliases does
	// not let that namespace open it. It is checked before any keyring
	// call; errors.As with a *[NamespaceError] gives both names.
	ErrNamespace = errors.New("payload was sealed for another namespace")
	// ErrNotEncrypted means Options.RequireEncryption is set and a payload
	// is not sealed.
	ErrNotEncrypted = errors.New("payload is not encrypted and encryption is required")
	// ErrErased means a payload was sealed for a data subject whose key
	// has been shredded: it can never be opened again (docs/ERASURE.md).
	// It is keyring.ErrErased.
	ErrErased = keyring.ErrErased
)

// Defaults for [Options].
const (
	DefaultNamespace         = "default"
	DefaultDataKeyMaxUses    = 1 << 20
	DefaultDataKeyMaxAge     = time.Hour
	DefaultDecodeCacheSize   = 1024
	DefaultDecodeCacheMaxAge = 15 * time.Minute
	DefaultSubjectKeyMaxAge  = time.Minute
)

// Bounds on [Options]; New refuses larger values.
const (
	// MaxDataKeyMaxUses is the NIST SP 800-38D limit on invocations of
	// AES-GCM with random 96-bit nonces under one key.
	MaxDataKeyMaxUses = 1 << 32
	// MaxDataKeyMaxAge bounds how long a data key's plaintext stays in
	// memory and in use for sealing.
	MaxDataKeyMaxAge = 24 * time.Hour
)

// parallelThreshold is the batch size from which Decode opens payloads on
// several goroutines.
const parallelThreshold = 64

// Options configures a [Codec]. All fields are optional.
type Options struct {
	// Namespace is the Temporal namespace assumed when the caller names
	// none (no serialization context). Default: "default". Payloads are
	// sealed for their namespace (envelope/v2) and open only there, so set
	// it to the client's namespace (the SDK's client options, e.g.
	// TEMPORAL_NAMESPACE): payloads the SDK encodes without a
	// serialization context are then sealed for the namespace the Web UI
	// and the CLI decode them in.
	Namespace string

	// NamespaceAliases lets a namespace open envelope/v2 payloads sealed
	// for other namespaces: NamespaceAliases["payments.acct"] =
	// []string{"payments"} lets payments.acct (a namespace renamed or
	// migrated, e.g. to Temporal Cloud) open what was sealed for payments.
	// It is one way (payments does not open payments.acct's payloads) and
	// never implicit. Default: none; a payload opens only in its own
	// namespace.
	NamespaceAliases map[string][]string

	// RefuseV1 makes Decode refuse envelope/v1 payloads (ErrUnsupported).
	// v1 is not bound to a namespace: any namespace whose keys unwrap a v1
	// payload's data key opens it. Set it once the histories that matter
	// hold only v2 payloads. Default: false (v1 decodes).
	RefuseV1 bool

	// RefuseLegacy makes Decode refuse payloads in the static-key format of
	// the Temporal samples (ErrUnsupported) even when the keyring holds
	// their key. Set it once migration off the samples' codec is done.
	// Default: false (they decode when the keyring holds a legacy key).
	RefuseLegacy bool

	// RequireEncryption makes Decode fail with ErrNotEncrypted on a
	// payload that is not sealed, instead of returning it unchanged: anyone
	// who can write to Temporal can otherwise inject plaintext (a signal, a
	// memo) that workers accept as genuine. Only nil payloads pass. Set it
	// once no history holds payloads from before encryption, together with
	// RefuseLegacy: anyone who knows a legacy static key (the samples' own
	// key is public) can seal a payload that decodes as genuine.
	// Default: false.
	RequireEncryption bool

	// DataKeyMaxUses bounds how many payloads are sealed under one data key
	// before a new one is requested. Default: 2^20 (see docs/FORMAT.md for
	// why this keeps random-nonce collisions negligible); at most
	// MaxDataKeyMaxUses (2^32).
	DataKeyMaxUses int

	// DataKeyMaxAge bounds how long one data key is used for sealing.
	// Default: one hour; at most MaxDataKeyMaxAge (24 hours). A keyring
	// that implements keyring.Rotating ends a data key's use sooner, as
	// soon as its key-encryption key is no longer the active one.
	DataKeyMaxAge time.Duration

	// DecodeCacheSize is the number of unwrapped data keys kept for
	// decoding, least recently used first out. Default: 1024.
	DecodeCacheSize int

	// DecodeCacheMaxAge bounds how long an unwrapped data key is reused
	// before the keyring is asked again, so a key retired or revoked in
	// the keyring (removed from the key file, Vault's
	// min_decryption_version raised, a policy tightened) stops decoding
	// within this time. Default: 15 minutes.
	DecodeCacheMaxAge time.Duration

	// Concurrency bounds the goroutines one large Decode uses.
	// Default: runtime.GOMAXPROCS(0).
	Concurrency int

	// DecodeObserver, if set, is told after every successful decode how it
	// found its data keys: cached is the number of decode-cache hits (a run
	// of payloads under one data key is one lookup), unwrapped the number of
	// data keys the keyring unwrapped. It must be fast and safe for
	// concurrent use; metrics are what it is for. Default: none.
	DecodeObserver func(cached, unwrapped int)

	// Subject, if set, names the data subject (a customer, a user) whose
	// data a workflow's payloads are, from the serialization context the
	// SDK gives (workflow ID, activity's workflow ID, namespace); "" means
	// none. Payloads with a subject are sealed under the subject's key, so
	// shredding that key erases them (docs/ERASURE.md); the keyring must
	// then implement keyring.SubjectKeyring (keyring/subject), and an ID
	// that keyring.ValidSubject refuses fails Encode. Default:
	// none; every payload uses the namespace's key.
	Subject func(converter.SerializationContext) string

	// SubjectKeyMaxAge bounds how long a data key wrapped under a data
	// subject's key is used for sealing or kept for decoding. It is how
	// long a shredded subject's payloads may still open (or new ones be
	// sealed) in a process that cached the key. Default: one minute.
	SubjectKeyMaxAge time.Duration

	// Compress compresses payloads of at least CompressThreshold bytes
	// (marshalled) with zlib before sealing them, when that makes them
	// smaller; the sealed payload then holds a binary/zlib payload (see
	// docs/FORMAT.md, "Compression"). Decode always decompresses such inner
	// payloads, whatever this option says. Only use this if the length of a
	// sealed payload may reveal how compressible its plaintext is: when an
	// attacker can put chosen text next to a secret in one payload, the
	// compressed length tells whether the two share bytes. Default: off.
	Compress bool
	// CompressThreshold is the smallest marshalled payload Compress
	// compresses. Default: DefaultCompressThreshold (256 bytes).
	CompressThreshold int
	// MaxDecompressedBytes bounds what one Decode call decompresses, all
	// payloads together (binary/zlib payloads inside sealed ones), and
	// the objects decompressed or decrypted payloads unmarshal into
	// ([ObjectCost] each, past [FreeObjects] for sealed payloads); more
	// fails with ErrMalformed, so a decompression or protobuf bomb costs
	// no more than this. Default: DefaultMaxDecompressedBytes (64 MiB).
	MaxDecompressedBytes int64

	// now is the clock: time.Now unless a test of this package sets it
	// (export_test.go). It is not an option users set.
	now func() time.Time
}

// Codec is a converter.PayloadCodec that seals payloads with AES-256-GCM
// under data keys wrapped by a keyring. It is safe for concurrent use.
type Codec struct {
	core      *core
	namespace string
	subject   string // data subject whose key seals; "" for the namespace's key
}

var (
	_ converter.PayloadCodec                         = (*Codec)(nil)
	_ converter.PayloadCodecWithSerializationContext = (*Codec)(nil)
)

// core is shared by a Codec and the namespace-bound Codecs derived from it.
type core struct {
	kr   keyring.Keyring
	rot  keyring.Rotating // kr, if it reports key generations
	opts Options

	encMu sync.Mutex
	enc   map[sealKeyID]*sealSlot // see sealcache.go
	// seenGen is the keyring generation the caches were last checked
	// against (purgeOnNewGeneration).
	seenGen atomic.Uint64
	// sweep drops data subject keys from the caches by time.
	sweep subjectSweeper

	dec  *lru.Cache[uint64, *openKey] // by core.hash
	seed maphash.Seed

	legacy sync.Map // key ID -> *openKey, for keyring.LegacyKeys

	zp zpools // zlib state for Options.Compress and inner binary/zlib payloads
}

// sealKey is a cached data key for encoding.
type sealKey struct {
	aead    cipher.AEAD
	aad     []byte
	md      envelope.Metadata
	expires time.Time
	gen     uint64 // the keyring's key generation when the key was made
	uses    atomic.Int64
}

// openKey is a cached data key for decoding, with what identifies it.
type openKey struct {
	aead      cipher.AEAD
	aad       []byte
	namespace string // the namespace the keyring unwrapped it for
	version   int    // envelope format version of the payloads it opens
	keyID     string
	wrapped   []byte
	expires   time.Time
	// gen is the keyring generation read before the keyring call that
	// unwrapped it: a data subject key is used only while the generation
	// is still gen, so a decode under way during an in-process shred
	// cannot leave the shredded key cached.
	gen uint64
}

// New returns a Codec that takes its keys from kr.
func New(kr keyring.Keyring, opts Options) (*Codec, error) {
	if kr == nil {
		return nil, errors.New("codec: nil keyring")
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if len(opts.Namespace) > envelope.MaxNamespaceLen {
		return nil, fmt.Errorf("codec: Namespace is %d bytes, at most %d allowed", len(opts.Namespace), envelope.MaxNamespaceLen)
	}
	if err := checkPolicy(&opts); err != nil {
		return nil, err
	}
	if opts.DataKeyMaxUses < 0 || opts.DataKeyMaxAge < 0 || opts.DecodeCacheSize < 0 || opts.DecodeCacheMaxAge < 0 || opts.Concurrency < 0 || opts.SubjectKeyMaxAge < 0 {
		return nil, errors.New("codec: negative option")
	}
	if int64(opts.DataKeyMaxUses) > MaxDataKeyMaxUses {
		return nil, fmt.Errorf("codec: DataKeyMaxUses is %d, at most %d (2^32, the NIST SP 800-38D limit for random nonces) allowed", opts.DataKeyMaxUses, int64(MaxDataKeyMaxUses))
	}
	if opts.DataKeyMaxAge > MaxDataKeyMaxAge {
		return nil, fmt.Errorf("codec: DataKeyMaxAge is %s, at most %s allowed", opts.DataKeyMaxAge, MaxDataKeyMaxAge)
	}
	if opts.DataKeyMaxUses == 0 {
		opts.DataKeyMaxUses = DefaultDataKeyMaxUses
	}
	if opts.DataKeyMaxAge == 0 {
		opts.DataKeyMaxAge = DefaultDataKeyMaxAge
	}
	if opts.DecodeCacheSize == 0 {
		opts.DecodeCacheSize = DefaultDecodeCacheSize
	}
	if opts.DecodeCacheMaxAge == 0 {
		opts.DecodeCacheMaxAge = DefaultDecodeCacheMaxAge
	}
	if opts.SubjectKeyMaxAge == 0 {
		opts.SubjectKeyMaxAge = DefaultSubjectKeyMaxAge
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.Subject != nil {
		if _, ok := kr.(keyring.SubjectKeyring); !ok {
			return nil, errors.New("codec: Options.Subject is set but the keyring holds no data subject keys (want a keyring.SubjectKeyring, e.g. keyring/subject)")
		}
	}
	if opts.CompressThreshold < 0 || opts.MaxDecompressedBytes < 0 {
		return nil, errors.New("codec: negative option")
	}
	if opts.CompressThreshold == 0 {
		opts.CompressThreshold = DefaultCompressThreshold
	}
	if opts.MaxDecompressedBytes == 0 {
		opts.MaxDecompressedBytes = DefaultMaxDecompressedBytes
	}
	cache, err := lru.New[uint64, *openKey](opts.DecodeCacheSize)
	if err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	c := &core{kr: kr, opts: opts, enc: make(map[sealKeyID]*sealSlot), dec: cache, seed: maphash.MakeSeed()}
	c.rot, _ = kr.(keyring.Rotating)
	if c.rot != nil {
		c.seenGen.Store(c.rot.KeyGeneration())
	}
	c.watchShreds()
	return &Codec{core: c, namespace: opts.Namespace}, nil
}

// Namespace returns the namespace this Codec chooses keys for.
func (c *Codec) Namespace() string { return c.namespace }

// ForNamespace returns a Codec that shares c's keyring and caches and
// chooses keys for namespace. An empty namespace returns c.
func (c *Codec) ForNamespace(namespace string) *Codec {
	if namespace == "" || namespace == c.namespace {
		return c
	}
	return &Codec{core: c.core, namespace: namespace, subject: c.subject}
}

// WithSerializationContext implements
// converter.PayloadCodecWithSerializationContext: the SDK tells the codec
// which namespace the payloads belong to. Contexts without a namespace
// (Nexus) keep the codec's namespace.
func (c *Codec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	switch s := sc.(type) {
	case converter.WorkflowSerializationContext:
		return c.ForNamespace(s.Namespace).withSubjectOf(sc)
	case converter.ActivitySerializationContext:
		return c.ForNamespace(s.Namespace).withSubjectOf(sc)
	}
	return c.withSubjectOf(sc)
}

// Encode implements converter.PayloadCodec.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return c.EncodeContext(context.Background(), payloads)
}

// Decode implements converter.PayloadCodec.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return c.DecodeContext(context.Background(), payloads)
}

// EncodeContext seals every payload under the namespace's current data key.
// Payloads that are already sealed are returned unchanged, never sealed
// twice. The input is not modified.
func (c *Codec) EncodeContext(ctx context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	var key *sealKey
	for i, p := range payloads {
		if p == nil || envelope.IsSealed(p) {
			out[i] = p
			continue
		}
		if key == nil || key.uses.Add(1) > int64(c.core.opts.DataKeyMaxUses) {
			var err error
			if key, err = c.core.sealKey(ctx, c.namespace, c.subject); err != nil {
				return nil, fmt.Errorf("codec: encode payload %d: %w", i, err)
			}
		}
		if c.core.opts.Compress && proto.Size(p) >= c.core.opts.CompressThreshold {
			z, smaller, err := c.core.zp.deflate(p)
			if err != nil {
				return nil, fmt.Errorf("codec: encode payload %d: %w", i, err)
			}
			if smaller {
				p = z
			}
		}
		data, err := envelope.Seal(key.aead, key.aad, p)
		if err != nil {
			return nil, fmt.Errorf("codec: encode payload %d: %w", i, err)
		}
		out[i] = &commonpb.Payload{Metadata: key.md.Map(), Data: data}
	}
	return out, nil
}

func newGCM(key keyring.Secret) (cipher.AEAD, error) {
	if key.Len() != keyring.DataKeySize {
		return nil, fmt.Errorf("data key is %d bytes, want %d", key.Len(), keyring.DataKeySize)
	}
	block, err := aes.NewCipher(key.UnsafeBytes())
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// DecodeContext opens every payload this codec sealed and returns all other
// payloads unchanged. If any sealed payload fails, it returns an error naming
// the payload's index and the reason, and no payloads. Data keys that are not
// cached are unwrapped in a single keyring call; large batches are opened on
// up to Options.Concurrency goroutines. The input is not modified.
func (c *Codec) DecodeContext(ctx context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	// Small batches (the CLI and the Web UI send one payload per request)
	// keep their keys on the stack: bigKeys, the only slice that reaches
	// other goroutines, is allocated only for batches that may need them.
	var keysBuf [smallBatch]*openKey
	var keys, bigKeys []*openKey
	if len(payloads) <= smallBatch {
		keys = keysBuf[:len(payloads)]
	} else {
		bigKeys = make([]*openKey, len(payloads))
		keys = bigKeys
	}
	now := c.core.opts.now()
	gen := c.core.purgeOnNewGeneration()
	cached := 0
	var missing []*pendingKey
	var missingBy map[uint64][]*pendingKey // by hash, once missing is long
	var prev envelope.Header               // a copy, not a pointer: &h would move every header to the heap
	havePrev := false
	var prevKey *openKey
	var prevPending *pendingKey
	for i, p := range payloads {
		if !envelope.IsSealed(p) {
			if p != nil && c.core.opts.RequireEncryption {
				return nil, fmt.Errorf("codec: decode payload %d: %w", i, ErrNotEncrypted)
			}
			continue
		}
		if envelope.IsLegacy(p) {
			if c.core.opts.RefuseLegacy {
				return nil, fmt.Errorf("codec: decode payload %d: %w: payload is in the static-key format of the Temporal samples (key %q) and legacy decoding is off", i, ErrUnsupported, truncate.To(p.Metadata[envelope.MetadataKeyID], idInError))
			}
			k, err := c.core.legacyKey(ctx, string(p.Metadata[envelope.MetadataKeyID]), now)
			if err != nil {
				return nil, fmt.Errorf("codec: decode payload %d: %w", i, err)
			}
			keys[i] = k
			continue
		}
		h, err := envelope.ParseHeader(p)
		if err != nil {
			return nil, fmt.Errorf("codec: decode payload %d: %w", i, err)
		}
		// Payloads of one history mostly share a data key: compare with the
		// previous sealed payload before hashing.
		if havePrev && h.Same(prev) {
			if prevKey != nil {
				keys[i] = prevKey
			} else {
				prevPending.at = append(prevPending.at, i)
			}
			continue
		}
		if err := c.admit(h); err != nil {
			return nil, fmt.Errorf("codec: decode payload %d: %w", i, err)
		}
		prev, havePrev, prevKey, prevPending = h, true, nil, nil
		kn := c.keyringNamespace(h)
		hash := c.core.hash(kn, h)
		if k, ok := c.core.dec.Get(hash); ok && k.matches(kn, h) && now.Before(k.expires) && (k.gen == gen || !keyring.IsSubjectKeyID(k.keyID)) {
			keys[i], prevKey = k, k
			cached++
			continue
		}
		prevPending = findPending(missing, missingBy, hash, h)
		if prevPending == nil {
			prevPending = &pendingKey{hash: hash, h: h, namespace: kn}
			missing = append(missing, prevPending)
			missingBy = indexPending(missing, missingBy, prevPending)
		}
		prevPending.at = append(prevPending.at, i)
	}
	if len(missing) > 0 {
		if err := c.unwrapByNamespace(ctx, missing, keys, now); err != nil {
			return nil, err
		}
	}
	out := make([]*commonpb.Payload, len(payloads))
	if len(payloads) < parallelThreshold {
		var lb lazyBudget
		if err := c.openRange(ctx, payloads, keys, out, 0, len(payloads), &lb); err != nil {
			return nil, err
		}
	} else {
		// Created before the goroutines start, which only read it.
		lb := &lazyBudget{b: newBudget(ctx, c.core.opts.MaxDecompressedBytes)}
		err := c.core.parallel(len(payloads), func(lo, hi int) error {
			return c.openRange(ctx, payloads, bigKeys, out, lo, hi, lb)
		})
		if err != nil {
			return nil, err
		}
	}
	if obs := c.core.opts.DecodeObserver; obs != nil {
		obs(cached, len(missing))
	}
	return out, nil
}

// smallBatch is the largest Decode whose per-payload keys stay on the
// stack.
const smallBatch = 8

// lazyBudget makes the decompression budget of one Decode when the first
// compressed payload needs it, so Decodes without compressed payloads do not
// allocate one. Not safe for concurrent use unless b is set beforehand.
type lazyBudget struct {
	b       *budget
	count   func(int) error // WithObjectCount's, read once when b is nil
	counted bool
}

func (l *lazyBudget) get(ctx context.Context, max int64) *budget {
	if l.b == nil {
		l.b = newBudget(ctx, max)
	}
	return l.b
}

// counter returns WithObjectCount's function, or nil.
func (l *lazyBudget) counter(ctx context.Context) func(int) error {
	if l.b != nil {
		return l.b.count
	}
	if !l.counted {
		l.count, l.counted = objectCounter(ctx), true
	}
	return l.count
}

// openRange opens payloads[lo:hi] whose keys are set into out, and copies
// the others.
func (c *Codec) openRange(ctx context.Context, payloads []*commonpb.Payload, keys []*openKey, out []*commonpb.Payload, lo, hi int, lb *lazyBudget) error {
	for i := lo; i < hi; i++ {
		if keys[i] == nil {
			out[i] = payloads[i]
			continue
		}
		pt, err := envelope.Decrypt(keys[i].aead, keys[i].aad, payloads[i].GetData())
		if err == nil {
			// Objects are counted, and those past FreeObjects charged,
			// before they exist.
			n := envelope.Objects(pt)
			if count := lb.counter(ctx); count != nil {
				err = count(n)
			}
			if err == nil && n > FreeObjects {
				err = lb.get(ctx, c.core.opts.MaxDecompressedBytes).charge(int64(n-FreeObjects) * ObjectCost)
			}
		}
		var p *commonpb.Payload
		if err == nil {
			if p, err = envelope.UnmarshalPayload(pt); err != nil {
				err = fmt.Errorf("%w: decrypted bytes are not a payload", envelope.ErrMalformed)
			}
		}
		if err != nil {
			return fmt.Errorf("codec: decode payload %d (key %q): %w", i, keys[i].keyID, err)
		}
		if isZlib(p) { // compressed before sealing (Options.Compress, the samples' zlib codec)
			if p, err = c.core.zp.inflate(p, lb.get(ctx, c.core.opts.MaxDecompressedBytes)); err != nil {
				return fmt.Errorf("codec: decode payload %d (key %q): %w", i, keys[i].keyID, err)
			}
		}
		out[i] = p
	}
	return nil
}

// legacyKey returns the key for a payload sealed by the Temporal samples'
// static-key codec, if the keyring holds it (keyring.LegacyKeys).
func (c *core) legacyKey(ctx context.Context, keyID string, now time.Time) (*openKey, error) {
	if k, ok := c.legacy.Load(keyID); ok && now.Before(k.(*openKey).expires) {
		return k.(*openKey), nil
	}
	lk, ok := c.kr.(keyring.LegacyKeys)
	if !ok {
		return nil, fmt.Errorf("%w: payload is in the static-key format of the Temporal samples (key %q) and the keyring holds no legacy keys", ErrUnsupported, truncate.To(keyID, idInError))
	}
	secret, err := lk.LegacyKey(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("static-key sample payload: %w", err)
	}
	aead, err := newGCM(secret)
	if err != nil {
		return nil, fmt.Errorf("legacy key %q: %w", truncate.To(keyID, idInError), err)
	}
	k := &openKey{aead: aead, keyID: keyID, expires: now.Add(c.opts.DecodeCacheMaxAge)}
	c.legacy.Store(keyID, k)
	return k, nil
}

// pendingKey is a wrapped data key a decode still needs, and the payloads
// that need it.
type pendingKey struct {
	hash      uint64
	h         envelope.Header
	namespace string // the namespace to unwrap for: see keyringNamespace
	at        []int
}

// unwrap unwraps the missing data keys in one keyring call, caches them and
// fills in keys.
func (c *Codec) unwrap(ctx context.Context, missing []*pendingKey, keys []*openKey, now time.Time) error {
	req := make([]keyring.WrappedKey, len(missing))
	for j, m := range missing {
		req[j] = keyring.WrappedKey{KeyID: string(m.h.KeyID), Wrapped: m.h.Wrapped}
	}
	gen := c.core.generation()
	secrets, err := c.core.kr.UnwrapDataKeys(ctx, c.namespace, req)
	if err != nil {
		// Name the payload of the key that failed when the keyring says
		// which (keyring.KeyError), else the first payload of the call.
		first := missing[0].at[0]
		for _, m := range missing {
			first = min(first, m.at[0])
		}
		if j, ok := keyring.FailedKey(err); ok && j >= 0 && j < len(missing) {
			first = missing[j].at[0]
		}
		return fmt.Errorf("codec: decode payload %d: unwrap data key: %w", first, err)
	}
	if len(secrets) != len(missing) {
		return fmt.Errorf("codec: keyring returned %d data keys, want %d", len(secrets), len(missing))
	}
	for j, m := range missing {
		aead, err := newGCM(secrets[j])
		if err != nil {
			return fmt.Errorf("codec: decode payload %d: %w", m.at[0], err)
		}
		k := &openKey{
			aead:      aead,
			aad:       m.h.AAD(),
			namespace: c.namespace,
			version:   m.h.Version,
			keyID:     req[j].KeyID,
			wrapped:   append([]byte(nil), req[j].Wrapped...),
			expires:   now.Add(c.core.maxAge(req[j].KeyID, c.core.opts.DecodeCacheMaxAge)),
			gen:       gen,
		}
		c.core.cacheOpenKey(m.hash, k, now)
		for _, i := range m.at {
			keys[i] = k
		}
	}
	return nil
}

// parallel runs fn over [0,n) in chunks on up to Concurrency goroutines and
// returns the error of the lowest failing chunk.
func (c *core) parallel(n int, fn func(lo, hi int) error) error {
	workers := min(c.opts.Concurrency, n/16)
	if n < parallelThreshold || workers <= 1 {
		return fn(0, n)
	}
	chunk := (n + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = fn(lo, hi)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// hash returns the decode cache's key for a wrapped data key in a
// namespace. Entries are checked with openKey.matches, so a collision is a
// cache miss, never a wrong key.
func (c *core) hash(namespace string, h envelope.Header) uint64 {
	var m maphash.Hash
	m.SetSeed(c.seed)
	m.WriteString(namespace)
	m.WriteByte(0)
	m.WriteByte(byte(h.Version))
	m.Write(h.KeyID)
	m.WriteByte(0)
	m.Write(h.Wrapped)
	return m.Sum64()
}

func (k *openKey) matches(namespace string, h envelope.Header) bool {
	return k.namespace == namespace && k.version == h.Version && k.keyID == string(h.KeyID) && bytes.Equal(k.wrapped, h.Wrapped)
}
