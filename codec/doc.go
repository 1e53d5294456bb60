// Package codec is a Temporal [converter.PayloadCodec] that encrypts every
// payload end to end with AES-256-GCM envelope encryption, so the Temporal
// server stores only ciphertext.
//
// Wire it into clients and workers with
// converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c),
// and serve it to the Web UI and the temporal CLI with the codecserver
// package.
//
// # Envelope format
//
// Each payload is marshalled whole (metadata included) and sealed under a
// 256-bit data key with a fresh random nonce. The data key is wrapped by a
// key-encryption key from a [keyring.Keyring]; the key's ID and the wrapped
// data key travel in the sealed payload's metadata and are bound to the
// ciphertext as additional data. docs/FORMAT.md gives the byte layout and a
// test vector.
//
// # Key rotation
//
// New payloads use the keyring's active key; payloads sealed under older
// keys decode as long as the keyring still holds them. One data key seals at
// most [Options].DataKeyMaxUses payloads and is used for at most
// DataKeyMaxAge, and no longer once the keyring reports a rotation
// ([keyring.Rotating]: a reloaded key file, a new Vault key version); unwrapped data keys are kept in a bounded LRU for decoding,
// and one Decode unwraps all the data keys it lacks in a single keyring
// call.
//
// # Namespaces
//
// Codec implements [converter.PayloadCodecWithSerializationContext]: the SDK
// tells it the namespace of the payloads, and keyrings may choose keys per
// namespace. Without a context, Options.Namespace applies: set it to the
// client's namespace.
//
// Every payload is sealed for its namespace (format envelope/v2: the
// namespace is in the metadata and bound in the additional data) and opens
// only through a Codec for that namespace ([Codec.ForNamespace]), whatever
// the keyring; another namespace gets [ErrNamespace] before any keyring
// call. [Options].NamespaceAliases lets a renamed or migrated namespace open
// an old one's payloads. envelope/v1 payloads are not namespace-bound; they
// decode unless Options.RefuseV1 is set.
//
// # Erasure by key
//
// [Options].Subject maps a payload's serialization context (its workflow
// ID) to a data subject; such payloads are sealed under the subject's key
// from a [keyring.SubjectKeyring] (keyring/subject). Shredding that key
// makes them fail with [ErrErased] for good; [Codec.DecodeErasable] lets a
// reader show the rest of a history. Caches hold a subject's data keys for
// at most Options.SubjectKeyMaxAge. See docs/ERASURE.md.
//
// # Compatibility
//
// Decode returns payloads that are not sealed (history written before
// encryption was switched on) unchanged unless Options.RequireEncryption is
// set ([ErrNotEncrypted]), and decodes payloads of the Temporal samples'
// static-key codec when the keyring holds their key as a legacy key
// ([keyring.LegacyKeys]) and Options.RefuseLegacy is not set, including the
// samples' compressed form: a binary/zlib payload (the SDK's
// converter.NewZlibCodec format) found inside a sealed payload is
// decompressed, within Options.MaxDecompressedBytes. Options.Compress writes
// that form too (off by default); [Zlib] reads binary/zlib payloads that
// are not sealed. Encode never seals a sealed payload again. A payload that
// claims to be sealed but cannot be opened fails with [ErrMalformed],
// [ErrUnsupported], [ErrDecrypt], [ErrNamespace] or a keyring error, and
// Decode then returns no payloads at all.
package codec
