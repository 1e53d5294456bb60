package keyring

import (
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/envelopecodec/envelope/internal/truncate"
)

// IndexKeys is implemented by keyrings that hold blind-index keys: keys
// that compute a keyed MAC (HMAC-SHA256) of a normalised search value, so
// equal values give equal tokens without revealing the value (package
// blindindex turns the MACs into Temporal search attribute tokens; see
// docs/SEARCH.md).
//
// Keys are separate per Temporal namespace and per field: the same value in
// two fields or two namespaces gives unrelated MACs. An empty namespace
// means "default". Each index key has a version, a short string of
// lower-case letters and digits that names it inside tokens; rotating the
// keyring's keys adds a version.
type IndexKeys interface {
	// IndexKeyVersions returns the versions of every index key held for
	// namespace, newest first: the first is the one new tokens use.
	IndexKeyVersions(ctx context.Context, namespace string) ([]string, error)

	// IndexMACs returns the HMAC-SHA256 of each input under the index key
	// of (namespace, field) with the given version ("" for the newest),
	// and the version used. The result has the same length and order as
	// inputs. Errors never contain an input. An unknown version is an
	// error wrapping ErrUnknownKey.
	IndexMACs(ctx context.Context, namespace, field, version string, inputs [][]byte) (used string, macs [][]byte, err error)
}

// Bounds on the names that select an index key.
const (
	// MaxIndexFieldLen bounds a blind-index field name.
	MaxIndexFieldLen = 64
	// MaxIndexNamespaceLen bounds a namespace name (Temporal's limit).
	MaxIndexNamespaceLen = 255
	// MaxIndexVersionLen bounds an index key version.
	MaxIndexVersionLen = 16
)

// indexDomain starts every blind-index derivation and MAC input, so index
// keys and MACs can never be confused with data-key wrapping (which uses a
// key of the file directly as an AES-GCM key) or anything else.
const indexDomain = "envelope/blind-index/v1"

// ValidIndexField checks a blind-index field name: 1 to MaxIndexFieldLen
// bytes of letters, digits, '_', '-' and '.'.
func ValidIndexField(field string) error {
	if field == "" || len(field) > MaxIndexFieldLen {
		return fmt.Errorf("keyring: index field name is %d bytes, want 1 to %d", len(field), MaxIndexFieldLen)
	}
	for i := 0; i < len(field); i++ {
		c := field[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("keyring: index field name has a character outside [A-Za-z0-9_.-] at byte %d", i)
		}
	}
	return nil
}

// ValidIndexVersion checks an index key version: 1 to MaxIndexVersionLen
// bytes of lower-case letters and digits, starting with a letter.
func ValidIndexVersion(v string) error {
	if v == "" || len(v) > MaxIndexVersionLen {
		return fmt.Errorf("keyring: index key version is %d bytes, want 1 to %d", len(v), MaxIndexVersionLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("keyring: index key version has a character outside [a-z0-9] (or a digit first) at byte %d", i)
		}
	}
	return nil
}

// IndexContext returns the domain-separation string of the index key of
// (namespace, field): "envelope/blind-index/v1", a zero byte, then the
// namespace and the field, each preceded by its length as two big-endian
// bytes. An empty namespace is "default". Keyrings whose MAC key is not
// already per field (Vault transit's HMAC key is per transit key) MAC
// IndexContext(namespace, field) ‖ value.
func IndexContext(namespace, field string) ([]byte, error) {
	if namespace == "" {
		namespace = "default"
	}
	if len(namespace) > MaxIndexNamespaceLen {
		return nil, fmt.Errorf("keyring: namespace is %d bytes, at most %d allowed", len(namespace), MaxIndexNamespaceLen)
	}
	if err := ValidIndexField(field); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(indexDomain)+1+2+len(namespace)+2+len(field))
	b = append(b, indexDomain...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(namespace)))
	b = append(b, namespace...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(field)))
	b = append(b, field...)
	return b, nil
}

// fileIndexVersionPrefix starts the index key version of a key file's key:
// "k" and six hex digits of a tag derived from the key.
const fileIndexVersionPrefix = "k"

// maxFieldKeyCache bounds the per-field keys a loaded key file keeps.
const maxFieldKeyCache = 4096

// fileIndexKey is the blind-index root of one key of a key file.
type fileIndexKey struct {
	fullID  string
	version string
	// prk is HKDF-Extract(salt = indexDomain, IKM = the file key). It is
	// not the key that wraps data keys and cannot be turned back into it.
	prk []byte
}

// fileIndex holds the blind-index roots of a parsed key file.
type fileIndex struct {
	byID      map[string]*fileIndexKey // full key ID ->
	byVersion map[string]*fileIndexKey
	fieldKeys sync.Map // string(version, IndexContext) -> []byte
	cached    atomic.Int64
}

// addIndexKey derives the blind-index root of the usable (not legacy, not
// retired) key fullID of a key file. Of two keys whose versions collide
// (24-bit tags), the first one in the file serves blind indexes.
func (ks *keySet) addIndexKey(fullID string, raw []byte) error {
	prk, err := hkdf.Extract(sha256.New, raw, []byte(indexDomain))
	if err != nil {
		return fmt.Errorf("keyring: derive index key: %w", err)
	}
	tag, err := hkdf.Expand(sha256.New, prk, indexDomain+" key-version", 3)
	if err != nil {
		return fmt.Errorf("keyring: derive index key version: %w", err)
	}
	if ks.index.byID == nil {
		ks.index.byID = make(map[string]*fileIndexKey)
		ks.index.byVersion = make(map[string]*fileIndexKey)
	}
	k := &fileIndexKey{fullID: fullID, version: fileIndexVersionPrefix + hex.EncodeToString(tag), prk: prk}
	if _, taken := ks.index.byVersion[k.version]; taken {
		return nil
	}
	ks.index.byID[fullID] = k
	ks.index.byVersion[k.version] = k
	return nil
}

var _ IndexKeys = (*File)(nil)

// IndexKeyVersions returns the index key versions of the file's usable keys
// (not legacy, not retired): the active key's first, then the others,
// most recently promoted (then created) first. The namespace does not
// change the versions of a key file.
func (f *File) IndexKeyVersions(ctx context.Context, namespace string) ([]string, error) {
	ks := f.current()
	infos := slices.Clone(ks.infos)
	slices.SortStableFunc(infos, func(a, b KeyInfo) int {
		if a.Active != b.Active {
			if a.Active {
				return -1
			}
			return 1
		}
		if c := b.Promoted.Compare(a.Promoted); c != 0 {
			return c
		}
		return cmp.Compare(b.Created.UnixNano(), a.Created.UnixNano())
	})
	var out []string
	for _, info := range infos {
		if k, ok := ks.index.byID[info.FullID()]; ok && !info.Legacy {
			out = append(out, k.version)
		}
	}
	return out, nil
}

// IndexMACs computes HMAC-SHA256 of each input under the key derived with
// HKDF-SHA256 from the file key of the given index key version ("" for the
// active key): salt "envelope/blind-index/v1", info "field" ‖ 0 ‖
// IndexContext(namespace, field), 32 bytes. docs/SEARCH.md has the
// derivation.
func (f *File) IndexMACs(ctx context.Context, namespace, field, version string, inputs [][]byte) (string, [][]byte, error) {
	ks := f.current()
	var k *fileIndexKey
	if version == "" {
		k = ks.index.byID[ks.active]
	} else {
		k = ks.index.byVersion[version]
	}
	if k == nil {
		if version == "" {
			return "", nil, fmt.Errorf("keyring: active key %q serves no blind index: %w", ks.active, ErrUnknownKey)
		}
		return "", nil, fmt.Errorf("keyring: index key version %q: %w", truncate.To(version, MaxIndexVersionLen), ErrUnknownKey)
	}
	key, err := ks.index.fieldKey(k, namespace, field)
	if err != nil {
		return "", nil, err
	}
	macs := make([][]byte, len(inputs))
	m := hmac.New(sha256.New, key)
	for i, in := range inputs {
		m.Reset()
		m.Write(in)
		macs[i] = m.Sum(nil)
	}
	return k.version, macs, nil
}

// fieldKey returns (and caches, up to maxFieldKeyCache entries) the index
// key of (namespace, field) under k.
func (x *fileIndex) fieldKey(k *fileIndexKey, namespace, field string) ([]byte, error) {
	ictx, err := IndexContext(namespace, field)
	if err != nil {
		return nil, err
	}
	cacheKey := k.version + "\x00" + string(ictx)
	if v, ok := x.fieldKeys.Load(cacheKey); ok {
		return v.([]byte), nil
	}
	key, err := hkdf.Expand(sha256.New, k.prk, "field\x00"+string(ictx), sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive index key: %w", err)
	}
	if x.cached.Load() < maxFieldKeyCache {
		if _, loaded := x.fieldKeys.LoadOrStore(cacheKey, key); !loaded {
			x.cached.Add(1)
		}
	}
	return key, nil
}
