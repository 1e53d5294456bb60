// Package blindindex makes encrypted values searchable in Temporal: it
// turns a value (a customer's e-mail) into a token, a keyed and truncated
// HMAC of the normalised value, to store in a Keyword search attribute.
// Equal values give equal tokens, so `temporal workflow list --query` finds
// a customer's workflows by the token of their e-mail, while the Temporal
// server, which stores and indexes search attributes in clear, never sees
// the e-mail. docs/SEARCH.md says what a blind index leaks and how it meets
// erasure.
//
// # Tokens
//
// A token is "<version>.<hex>": the version of the index key that made it
// ("k1a2b3c" for a key of a key file, "v3" for Vault transit key version 3)
// and the first Field.Bits bits of HMAC-SHA256 in lower-case hex. The keys
// are per namespace and per field (keyring.IndexKeys): the same e-mail in
// two fields or two namespaces gives unrelated tokens.
//
// # Truncation
//
// Field.Bits (default [DefaultBits], 64) sets the token length. Shorter
// tokens collide more often: a query then also returns workflows of other
// values (false positives, to filter by decoding their input), and an
// observer learns less about how often each value occurs. With N distinct
// values and b bits, a query returns about N/2^b other values' workflows;
// 64 bits makes that negligible below billions of values. To hide
// frequencies choose b so that 2^b is well below N (for example 16 bits
// for a million customers: ~15 values share each token) and confirm hits.
//
// # Where to compute tokens
//
// A token needs the index key: with a key file it is computed in-process;
// with Vault it is a call to transit/hmac. Compute tokens outside workflow
// code: in the starter (client.StartWorkflowOptions.TypedSearchAttributes)
// or in an activity whose result the workflow passes to
// workflow.UpsertTypedSearchAttributes. A workflow must not call a key
// service: that is not deterministic on replay.
//
// # Rotation
//
// New tokens use the newest index key. [Index.QueryTokens] returns a
// value's token under every index key version the keyring still holds,
// newest first, so a query clause ([Clause]) finds workflows of every age.
// To move a long-running workflow to the new key, upsert its attribute with
// a token computed now.
package blindindex

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/envelopecodec/envelope/keyring"
)

// Token lengths in bits.
const (
	// DefaultBits is the token length of a field whose Field.Bits is 0.
	DefaultBits = 64
	// MinBits is the shortest token allowed.
	MinBits = 8
	// MaxBits is the longest token: the whole HMAC-SHA256.
	MaxBits = 256
)

// Field configures one indexed field. The zero value is valid.
type Field struct {
	// Normalize maps a value to the form its token is computed from.
	// Default: StandardNormalizer(field name).
	Normalize Normalizer
	// Bits is the token length in bits, a multiple of 4 from MinBits to
	// MaxBits. Default: DefaultBits. See the package comment on
	// truncation.
	Bits int
}

// Options configures [New]. All fields are optional.
type Options struct {
	// Fields configures fields by name. A field not listed gets
	// Field{} (its standard normaliser, DefaultBits).
	Fields map[string]Field
}

// Index computes blind-index tokens with the keys of a keyring. It is safe
// for concurrent use.
type Index struct {
	keys   keyring.IndexKeys
	fields map[string]Field
}

// New returns an Index on keys. It checks every field of opts.
func New(keys keyring.IndexKeys, opts Options) (*Index, error) {
	if keys == nil {
		return nil, errors.New("blindindex: no index keys")
	}
	ix := &Index{keys: keys, fields: make(map[string]Field, len(opts.Fields))}
	for name, f := range opts.Fields {
		if err := keyring.ValidIndexField(name); err != nil {
			return nil, fmt.Errorf("blindindex: field %q: %w", name, err)
		}
		if f.Bits != 0 && (f.Bits < MinBits || f.Bits > MaxBits || f.Bits%4 != 0) {
			return nil, fmt.Errorf("blindindex: field %q: Bits is %d, want a multiple of 4 from %d to %d", name, f.Bits, MinBits, MaxBits)
		}
		ix.fields[name] = f
	}
	return ix, nil
}

// field returns the configuration of field with defaults filled in.
func (ix *Index) field(name string) (Field, error) {
	if err := keyring.ValidIndexField(name); err != nil {
		return Field{}, fmt.Errorf("blindindex: %w", err)
	}
	f := ix.fields[name]
	if f.Normalize == nil {
		f.Normalize = StandardNormalizer(name)
	}
	if f.Bits == 0 {
		f.Bits = DefaultBits
	}
	return f, nil
}

// normalize normalises values for field; errors name the value's index,
// never the value.
func normalize(f Field, name string, values []string) ([][]byte, error) {
	out := make([][]byte, len(values))
	for i, v := range values {
		n, err := f.Normalize(v)
		if err != nil {
			if len(values) == 1 {
				return nil, fmt.Errorf("field %q: %w", name, err)
			}
			return nil, fmt.Errorf("field %q: value %d: %w", name, i, err)
		}
		out[i] = []byte(n)
	}
	return out, nil
}

// Token returns the token of value for field in namespace under the newest
// index key (an empty namespace means "default").
func (ix *Index) Token(ctx context.Context, namespace, field, value string) (string, error) {
	ts, err := ix.Tokens(ctx, namespace, field, []string{value})
	if err != nil {
		return "", err
	}
	return ts[0], nil
}

// Tokens returns the tokens of values for field in namespace under the
// newest index key, in order, with one keyring call (Vault: one
// transit/hmac call per 1,000 values).
func (ix *Index) Tokens(ctx context.Context, namespace, field string, values []string) ([]string, error) {
	f, err := ix.field(field)
	if err != nil {
		return nil, err
	}
	inputs, err := normalize(f, field, values)
	if err != nil {
		return nil, err
	}
	version, macs, err := ix.keys.IndexMACs(ctx, namespace, field, "", inputs)
	if err != nil {
		return nil, fmt.Errorf("blindindex: field %q: %w", field, err)
	}
	return tokens(f, version, macs)
}

// QueryTokens returns the tokens of value for field in namespace under
// every index key version the keyring holds, newest first: what a query
// must match to find workflows started before and after a rotation.
func (ix *Index) QueryTokens(ctx context.Context, namespace, field, value string) ([]string, error) {
	f, err := ix.field(field)
	if err != nil {
		return nil, err
	}
	inputs, err := normalize(f, field, []string{value})
	if err != nil {
		return nil, err
	}
	versions, err := ix.keys.IndexKeyVersions(ctx, namespace)
	if err != nil {
		return nil, fmt.Errorf("blindindex: field %q: %w", field, err)
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("blindindex: the keyring holds no index key for namespace %q: %w", namespace, keyring.ErrUnknownKey)
	}
	out := make([]string, 0, len(versions))
	for _, v := range versions {
		used, macs, err := ix.keys.IndexMACs(ctx, namespace, field, v, inputs)
		if err != nil {
			return nil, fmt.Errorf("blindindex: field %q: %w", field, err)
		}
		ts, err := tokens(f, used, macs)
		if err != nil {
			return nil, err
		}
		out = append(out, ts[0])
	}
	return out, nil
}

// Attribute returns the update that sets the Keyword search attribute key
// to the token of value, for client.StartWorkflowOptions.TypedSearchAttributes
// (temporal.NewSearchAttributes(update)) or
// workflow.UpsertTypedSearchAttributes. Call it outside workflow code (see
// the package comment).
func (ix *Index) Attribute(ctx context.Context, namespace, field string, key temporal.SearchAttributeKeyKeyword, value string) (temporal.SearchAttributeUpdate, error) {
	t, err := ix.Token(ctx, namespace, field, value)
	if err != nil {
		return nil, err
	}
	return key.ValueSet(t), nil
}

// Query returns the visibility query clause that finds the workflows whose
// Keyword search attribute holds value's token for field under any index
// key version: Clause(attribute, QueryTokens(...)).
func (ix *Index) Query(ctx context.Context, namespace, field, attribute, value string) (string, error) {
	if err := validAttribute(attribute); err != nil {
		return "", err
	}
	ts, err := ix.QueryTokens(ctx, namespace, field, value)
	if err != nil {
		return "", err
	}
	return Clause(attribute, ts)
}

// Clause returns the visibility query clause "ATTR IN ('t1', 't2')" for
// `temporal workflow list --query` and ListWorkflow. The attribute must be
// a search attribute name (letters, digits and '_', not starting with a
// digit) and the tokens well formed, so nothing needs escaping.
func Clause(attribute string, tokens []string) (string, error) {
	if err := validAttribute(attribute); err != nil {
		return "", err
	}
	if len(tokens) == 0 {
		return "", errors.New("blindindex: no tokens for the clause")
	}
	quoted := make([]string, len(tokens))
	for i, t := range tokens {
		if err := ValidToken(t); err != nil {
			return "", err
		}
		quoted[i] = "'" + t + "'"
	}
	return attribute + " IN (" + strings.Join(quoted, ", ") + ")", nil
}

// ValidToken checks the form of a token: a valid index key version, '.',
// and 2 to 64 lower-case hex digits.
func ValidToken(t string) error {
	version, mac, ok := strings.Cut(t, ".")
	if !ok {
		return errors.New("blindindex: malformed token: no '.'")
	}
	if err := keyring.ValidIndexVersion(version); err != nil {
		return fmt.Errorf("blindindex: malformed token: %w", err)
	}
	if len(mac) < MinBits/4 || len(mac) > MaxBits/4 {
		return fmt.Errorf("blindindex: malformed token: %d hex digits, want %d to %d", len(mac), MinBits/4, MaxBits/4)
	}
	for i := 0; i < len(mac); i++ {
		if c := mac[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return errors.New("blindindex: malformed token: not lower-case hex after '.'")
		}
	}
	return nil
}

func validAttribute(a string) error {
	if a == "" || len(a) > 255 {
		return fmt.Errorf("blindindex: search attribute name is %d bytes, want 1 to 255", len(a))
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("blindindex: search attribute name has a character outside [A-Za-z0-9_] (or a digit first) at byte %d", i)
		}
	}
	return nil
}

// tokens formats MACs as tokens of f under version.
func tokens(f Field, version string, macs [][]byte) ([]string, error) {
	if err := keyring.ValidIndexVersion(version); err != nil {
		return nil, fmt.Errorf("blindindex: keyring answered a bad index key version: %w", err)
	}
	out := make([]string, len(macs))
	for i, m := range macs {
		if len(m)*8 < f.Bits {
			return nil, fmt.Errorf("blindindex: keyring answered a %d-byte MAC, want at least %d bits", len(m), f.Bits)
		}
		out[i] = version + "." + hex.EncodeToString(m)[:f.Bits/4]
	}
	return out, nil
}
