// Package envelope holds the byte format of sealed payloads: the metadata
// keys, the additional data and the layout of the data field. docs/FORMAT.md
// describes the same format in prose.
package envelope

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/internal/truncate"
)

// Metadata keys and values of a sealed payload.
const (
	MetadataEncoding   = "encoding"
	EncodingEncrypted  = "binary/encrypted"
	MetadataKeyID      = "encryption-key-id"
	MetadataWrappedKey = "encryption-wrapped-key"
	MetadataFormat     = "encryption-format"
	FormatV1           = "envelope/v1"
	// MetadataNamespace (v2 only) names the Temporal namespace a payload
	// was sealed for; the v2 additional data binds it.
	MetadataNamespace = "encryption-namespace"
	FormatV2          = "envelope/v2"
)

// Sizes of the data field's parts, and bounds on metadata fields.
const (
	NonceSize = 12
	TagSize   = 16
	// Overhead is what sealing adds to the marshalled payload.
	Overhead = NonceSize + TagSize
	// MaxKeyIDLen and MaxWrappedKeyLen bound the metadata a sealed payload
	// may carry; longer values are refused before any key service is asked.
	MaxKeyIDLen      = 512
	MaxWrappedKeyLen = 4096
	// MaxNamespaceLen is Temporal's limit on namespace names.
	MaxNamespaceLen = 255
)

// aadLabel starts the additional data of every v1 payload, aadLabelV2 of
// every v2 payload.
const (
	aadLabel   = "temporal-envelope/v1\x00"
	aadLabelV2 = "temporal-envelope/v2\x00"
)

// Errors for payloads that claim to be sealed but cannot be opened.
var (
	ErrMalformed   = errors.New("malformed encrypted payload")
	ErrUnsupported = errors.New("unsupported encryption format")
	ErrDecrypt     = errors.New("payload does not decrypt: tampered, truncated or sealed under another key")
)

// Header is what a sealed payload's metadata says about its key and, from
// v2 on, its namespace.
type Header struct {
	// Version is the format version: 1 or 2.
	Version int
	// Namespace is the namespace the payload was sealed for (v2); nil for
	// v1, which is not bound to a namespace.
	Namespace []byte
	KeyID     []byte
	Wrapped   []byte
}

// Same reports whether h and o name the same wrapped data key in the same
// format and namespace, so that one opened key serves both.
func (h Header) Same(o Header) bool {
	return h.Version == o.Version && bytes.Equal(h.KeyID, o.KeyID) && bytes.Equal(h.Wrapped, o.Wrapped) && bytes.Equal(h.Namespace, o.Namespace)
}

// AAD returns the additional data of the payload h describes: [AADv2] for
// v2, [AAD] for v1.
func (h Header) AAD() []byte {
	if h.Version == 2 {
		return AADv2(string(h.Namespace), string(h.KeyID), h.Wrapped)
	}
	return AAD(string(h.KeyID), h.Wrapped)
}

// IsSealed reports whether p says it is an encrypted payload.
func IsSealed(p *commonpb.Payload) bool {
	return p != nil && string(p.GetMetadata()[MetadataEncoding]) == EncodingEncrypted
}

// IsLegacy reports whether a sealed payload is in the static-key format of
// the Temporal samples' encryption codec: an encryption-key-id (empty, the
// samples' default, included) but no encryption-format. Its data has the
// same layout as v1 (nonce ‖ ciphertext ‖ tag) and no additional data.
func IsLegacy(p *commonpb.Payload) bool {
	md := p.GetMetadata()
	_, hasFormat := md[MetadataFormat]
	// The samples' default key ID is "": the key is there, its value empty.
	keyID, hasKeyID := md[MetadataKeyID]
	return !hasFormat && hasKeyID && len(keyID) <= MaxKeyIDLen
}

// ParseHeader reads and checks the metadata of a sealed payload. It does not
// touch the data.
func ParseHeader(p *commonpb.Payload) (Header, error) {
	md := p.GetMetadata()
	format, ok := md[MetadataFormat]
	if !ok {
		return Header{}, fmt.Errorf("%w: no %s metadata (not an envelope payload; perhaps sealed by a static-key sample codec)", ErrUnsupported, MetadataFormat)
	}
	var h Header
	switch string(format) {
	case FormatV1:
		h.Version = 1
		if _, ok := md[MetadataNamespace]; ok {
			return Header{}, fmt.Errorf("%w: %s in an %s payload", ErrMalformed, MetadataNamespace, FormatV1)
		}
	case FormatV2:
		h.Version = 2
		ns, ok := md[MetadataNamespace]
		switch {
		case !ok || len(ns) == 0:
			return Header{}, fmt.Errorf("%w: missing %s", ErrMalformed, MetadataNamespace)
		case len(ns) > MaxNamespaceLen:
			return Header{}, fmt.Errorf("%w: %s is %d bytes, at most %d allowed", ErrMalformed, MetadataNamespace, len(ns), MaxNamespaceLen)
		}
		h.Namespace = ns
	default:
		return Header{}, fmt.Errorf("%w: %s is %q, want %q or %q", ErrUnsupported, MetadataFormat, truncate.To(format, 32), FormatV2, FormatV1)
	}
	keyID, ok := md[MetadataKeyID]
	switch {
	case !ok || len(keyID) == 0:
		return Header{}, fmt.Errorf("%w: missing %s", ErrMalformed, MetadataKeyID)
	case len(keyID) > MaxKeyIDLen:
		return Header{}, fmt.Errorf("%w: %s is %d bytes, at most %d allowed", ErrMalformed, MetadataKeyID, len(keyID), MaxKeyIDLen)
	}
	wrapped, ok := md[MetadataWrappedKey]
	switch {
	case !ok || len(wrapped) == 0:
		return Header{}, fmt.Errorf("%w: missing %s", ErrMalformed, MetadataWrappedKey)
	case len(wrapped) > MaxWrappedKeyLen:
		return Header{}, fmt.Errorf("%w: %s is %d bytes, at most %d allowed", ErrMalformed, MetadataWrappedKey, len(wrapped), MaxWrappedKeyLen)
	}
	if len(p.GetData()) < Overhead {
		return Header{}, fmt.Errorf("%w: data is %d bytes, at least %d needed", ErrMalformed, len(p.GetData()), Overhead)
	}
	h.KeyID, h.Wrapped = keyID, wrapped
	return h, nil
}

// AAD returns the additional data that binds a payload to its format
// version, key ID and wrapped data key:
//
//	"temporal-envelope/v1" 0x00 ‖ uint32be(len(keyID)) ‖ keyID ‖ uint32be(len(wrapped)) ‖ wrapped
func AAD(keyID string, wrapped []byte) []byte {
	b := make([]byte, 0, len(aadLabel)+8+len(keyID)+len(wrapped))
	b = append(b, aadLabel...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keyID)))
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(wrapped)))
	b = append(b, wrapped...)
	return b
}

// AADv2 returns the additional data of a v2 payload, which binds it to its
// format version, namespace, key ID and wrapped data key:
//
//	"temporal-envelope/v2" 0x00 ‖ uint32be(len(namespace)) ‖ namespace
//	‖ uint32be(len(keyID)) ‖ keyID ‖ uint32be(len(wrapped)) ‖ wrapped
func AADv2(namespace, keyID string, wrapped []byte) []byte {
	b := make([]byte, 0, len(aadLabelV2)+12+len(namespace)+len(keyID)+len(wrapped))
	b = append(b, aadLabelV2...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(namespace)))
	b = append(b, namespace...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keyID)))
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(wrapped)))
	b = append(b, wrapped...)
	return b
}

// Metadata returns the metadata of a sealed payload. The byte slices are
// shared by every payload sealed under the same data key.
type Metadata struct {
	namespace, keyID, wrapped []byte
}

// NewMetadata prepares the metadata values of a v1 payload for a data key.
// New payloads are v2 ([NewMetadataV2]); this remains for tests of v1.
func NewMetadata(keyID string, wrapped []byte) Metadata {
	return Metadata{keyID: []byte(keyID), wrapped: append([]byte(nil), wrapped...)}
}

// NewMetadataV2 prepares the metadata values of a v2 payload sealed for
// namespace under a data key.
func NewMetadataV2(namespace, keyID string, wrapped []byte) Metadata {
	return Metadata{namespace: []byte(namespace), keyID: []byte(keyID), wrapped: append([]byte(nil), wrapped...)}
}

var (
	encodingValue = []byte(EncodingEncrypted)
	formatValue   = []byte(FormatV1)
	formatValueV2 = []byte(FormatV2)
)

// Map returns a fresh metadata map for one sealed payload.
func (m Metadata) Map() map[string][]byte {
	if m.namespace != nil {
		return map[string][]byte{
			MetadataEncoding:   encodingValue,
			MetadataFormat:     formatValueV2,
			MetadataNamespace:  m.namespace,
			MetadataKeyID:      m.keyID,
			MetadataWrappedKey: m.wrapped,
		}
	}
	return map[string][]byte{
		MetadataEncoding:   encodingValue,
		MetadataFormat:     formatValue,
		MetadataKeyID:      m.keyID,
		MetadataWrappedKey: m.wrapped,
	}
}

// Seal marshals p and seals it under aead with a random nonce from
// crypto/rand, returning nonce ‖ ciphertext ‖ tag.
func Seal(aead cipher.AEAD, aad []byte, p *commonpb.Payload) ([]byte, error) {
	return SealWithNonce(aead, aad, p, rand.Reader)
}

// SealWithNonce is Seal with the nonce read from r. Only use this with
// crypto/rand outside of tests: a repeated nonce under one key breaks
// AES-GCM.
func SealWithNonce(aead cipher.AEAD, aad []byte, p *commonpb.Payload, r io.Reader) ([]byte, error) {
	size, fast := payloadSize(p)
	if !fast {
		size = proto.Size(p)
	}
	buf := make([]byte, NonceSize, NonceSize+size+TagSize)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	if fast {
		buf = appendPayload(buf, p)
	} else {
		var err error
		if buf, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(buf, p); err != nil {
			return nil, fmt.Errorf("marshal payload: %w", err)
		}
	}
	// Seal in place: the ciphertext overwrites the marshalled payload.
	ct := aead.Seal(buf[NonceSize:NonceSize], buf[:NonceSize], buf[NonceSize:], aad)
	return buf[:NonceSize+len(ct)], nil
}

// payloadSize returns the wire size of p and whether appendPayload can
// marshal it: payloads with only metadata and data, the common case, skip
// the reflection-driven generic marshaller. Anything else (external payload
// details, unknown fields) goes through proto.Marshal.
func payloadSize(p *commonpb.Payload) (int, bool) {
	if len(p.GetExternalPayloads()) > 0 || len(p.ProtoReflect().GetUnknown()) > 0 {
		return 0, false
	}
	n := 0
	for k, v := range p.GetMetadata() {
		e := entrySize(k, v)
		n += 1 + protowire.SizeVarint(uint64(e)) + e
	}
	if d := len(p.GetData()); d > 0 {
		n += 1 + protowire.SizeBytes(d)
	}
	return n, true
}

func entrySize(k string, v []byte) int {
	return 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(len(v))
}

// appendPayload appends p in protobuf wire format: field 1 (metadata map
// entries: key 1, value 2), then field 2 (data), as proto.Marshal does.
func appendPayload(b []byte, p *commonpb.Payload) []byte {
	for k, v := range p.GetMetadata() {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(k, v)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, v)
	}
	if len(p.GetData()) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, p.GetData())
	}
	return b
}

// Open opens the data of a sealed payload and unmarshals the original
// payload. Any failure returns ErrDecrypt or ErrMalformed; nothing is
// returned half-decrypted. data is not modified.
func Open(aead cipher.AEAD, aad, data []byte) (*commonpb.Payload, error) {
	pt, err := Decrypt(aead, aad, data)
	if err != nil {
		return nil, err
	}
	p, err := UnmarshalPayload(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: decrypted bytes are not a payload", ErrMalformed)
	}
	return p, nil
}

// Decrypt returns the plaintext of a sealed payload's data: the marshalled
// payload Open unmarshals. Callers that must bound what unmarshalling
// allocates ([Objects]) decrypt first and then call [UnmarshalPayload].
func Decrypt(aead cipher.AEAD, aad, data []byte) ([]byte, error) {
	if len(data) < Overhead {
		return nil, fmt.Errorf("%w: data is %d bytes, at least %d needed", ErrMalformed, len(data), Overhead)
	}
	pt, err := aead.Open(nil, data[:NonceSize], data[NonceSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Objects returns how many metadata entries (field 1) and external
// payload details (field 3) the marshalled Payload b holds: the objects
// unmarshalling it allocates besides copies of its bytes. Two bytes of
// wire (an empty entry) become some 60-100 bytes of heap each, so callers
// charge them before unmarshalling. It allocates nothing and stops at the
// first malformed field (unmarshalling then fails anyway).
func Objects(b []byte) int {
	n := 0
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		if l = protowire.ConsumeFieldValue(num, typ, b); l < 0 {
			return n
		}
		b = b[l:]
		if typ == protowire.BytesType && (num == 1 || num == 3) {
			n++
		}
	}
	return n
}

// UnmarshalPayload unmarshals a Payload whose byte slices alias b, which
// the caller hands over: decryption already allocated b, and copying every
// payload's data a second time would double decode's memory traffic. Only
// metadata (field 1) and data (field 2) are read this way; anything else
// (external payload details, unknown fields) falls back to proto.Unmarshal,
// so the result is always what proto.Unmarshal returns.
func UnmarshalPayload(b []byte) (*commonpb.Payload, error) {
	if p, ok := unmarshalFast(b); ok {
		return p, nil
	}
	p := &commonpb.Payload{}
	if err := proto.Unmarshal(b, p); err != nil {
		return nil, err
	}
	return p, nil
}

func unmarshalFast(b []byte) (*commonpb.Payload, bool) {
	p := &commonpb.Payload{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return nil, false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch num {
		case 1:
			key, val, ok := unmarshalEntry(v)
			if !ok {
				return nil, false
			}
			if p.Metadata == nil {
				p.Metadata = make(map[string][]byte, 4)
			}
			p.Metadata[key] = val
		case 2:
			p.Data = v[:len(v):len(v)]
		default:
			return nil, false
		}
	}
	return p, true
}

// unmarshalEntry reads one map<string, bytes> entry.
func unmarshalEntry(b []byte) (key string, val []byte, ok bool) {
	val = []byte{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return "", nil, false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return "", nil, false
		}
		b = b[n:]
		switch num {
		case 1:
			if !utf8.Valid(v) {
				return "", nil, false
			}
			key = string(v)
		case 2:
			val = v[:len(v):len(v)]
		default:
			return "", nil, false
		}
	}
	return key, val, true
}
