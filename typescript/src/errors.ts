// Error classes with the meaning of the Go packages' sentinels (codec.ErrDecrypt,
// keyring.ErrUnknownKey, ...). Test with `instanceof`: wrapping keeps the class.
// Messages carry key IDs and namespaces, never key bytes, plaintext or tokens.

/** Base class of every error this package throws. `reason` is the codec server's reason code for the same error. */
export class EnvelopeError extends Error {
  readonly reason: string = 'internal';
  /** For a keyring's unwrapDataKeys error: the index of the wrapped key that failed. */
  keyIndex?: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A sealed payload's metadata or data is missing, truncated or out of bounds (codec.ErrMalformed). */
export class MalformedError extends EnvelopeError {
  override readonly reason = 'malformed';
}

/** A payload says it is encrypted but in a format (or version) this codec does not open (codec.ErrUnsupported). */
export class UnsupportedError extends EnvelopeError {
  override readonly reason = 'unsupported';
}

/**
 * Authentication failed: the data or the metadata bound to it was changed, or the data key is
 * not the one it was sealed with. A wrong key and tampering are deliberately indistinguishable
 * (codec.ErrDecrypt).
 */
export class DecryptError extends EnvelopeError {
  override readonly reason = 'decrypt';
}

/** An envelope/v2 payload was sealed for another namespace than the one decoding it (codec.ErrNamespace). */
export class NamespaceError extends EnvelopeError {
  override readonly reason = 'namespace_mismatch';
  /** The namespace the payload was sealed for. */
  sealed = '';
  /** The namespace that tried to open it. */
  decoding = '';
  static of(sealed: string, decoding: string): NamespaceError {
    const e = new NamespaceError(
      `payload was sealed for another namespace: sealed for namespace ${JSON.stringify(sealed)}, decoding in namespace ${JSON.stringify(decoding)}`,
    );
    e.sealed = sealed;
    e.decoding = decoding;
    return e;
  }
}

/** requireEncryption is set and a payload is not sealed (codec.ErrNotEncrypted). */
export class NotEncryptedError extends EnvelopeError {
  override readonly reason = 'not_encrypted';
}

/** A payload belongs to a data subject whose key was shredded (codec.ErrErased). */
export class ErasedError extends EnvelopeError {
  override readonly reason = 'erased';
}

/** The keyring does not hold the key ID a wrapped data key names, or the key is retired (keyring.ErrUnknownKey). */
export class UnknownKeyError extends EnvelopeError {
  override readonly reason = 'unknown_key';
}

/**
 * A payload was sealed under a data subject's key (key ID `subject/<store>/<handle>/<generation>`,
 * docs/ERASURE.md), which this package does not support yet: it holds no data subject keys, so it
 * cannot open the payload, nor tell a live subject from a shredded one. It is an UnknownKeyError,
 * as in Go when a keyring without data subject keys meets such a payload (keyring.ErrUnknownKey,
 * reason `unknown_key`), never an ErasedError. The Go codec with keyring/subject, or the codec
 * server, opens these payloads.
 */
export class SubjectKeyNotSupportedError extends UnknownKeyError {}

/** A wrapped data key did not authenticate under the key it names (keyring.ErrUnwrap). */
export class UnwrapError extends EnvelopeError {
  override readonly reason = 'unwrap';
}

/** The key service refused the operation (keyring.ErrPermission). */
export class PermissionError extends EnvelopeError {
  override readonly reason = 'key_permission';
}

/** The key service could not be reached or is not ready (keyring.ErrUnavailable). */
export class UnavailableError extends EnvelopeError {
  override readonly reason = 'keyring_unavailable';
}

/**
 * wrapError returns an error of the same class as err whose message starts with prefix, with err
 * as its cause, as Go's fmt.Errorf("%s: %w") does. Errors of other classes become an
 * EnvelopeError.
 */
export function wrapError(prefix: string, err: unknown): EnvelopeError {
  if (err instanceof EnvelopeError) {
    const C = err.constructor as new (m: string, o?: { cause?: unknown }) => EnvelopeError;
    const w = new C(`${prefix}: ${err.message}`, { cause: err });
    w.keyIndex = err.keyIndex;
    if (err instanceof NamespaceError) {
      (w as NamespaceError).sealed = err.sealed;
      (w as NamespaceError).decoding = err.decoding;
    }
    return w;
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new EnvelopeError(`${prefix}: ${msg}`, { cause: err });
}
