// The interface the codec needs from a keyring, as in the Go package keyring.

import type { KeyObject } from 'node:crypto';

/** A data key in both its plaintext (a KeyObject, which never prints its bytes) and wrapped form. */
export interface DataKey {
  /** The key-encryption key that wrapped it: `local/<id>`, `vault/<mount>/<key>/v<N>`. */
  keyId: string;
  /** The data key wrapped under keyId; stored with each payload. */
  wrapped: Uint8Array;
  /** The plaintext data key, 32 bytes. */
  key: KeyObject;
}

/**
 * Starts the key ID of a data key wrapped under a data subject's key: `subject/<store>/<handle>/<generation>`
 * (keyring.SubjectKeyIDPrefix in Go, docs/FORMAT.md). This package holds no such keys yet.
 */
export const SUBJECT_KEY_ID_PREFIX = 'subject/';

/** A data key wrapped under the key-encryption key keyId. */
export interface WrappedKey {
  keyId: string;
  wrapped: Uint8Array;
}

/**
 * Keyring wraps and unwraps data keys with key-encryption keys. Implementations in this package:
 * FileKeyring (the key file) and VaultTransitKeyring.
 */
export interface Keyring {
  /** A fresh 256-bit data key and its wrapped form under the active key-encryption key for namespace. */
  newDataKey(namespace: string): Promise<DataKey>;
  /**
   * Unwraps all keys in one call (one round trip where the service allows). The result has the
   * same length and order. If any key fails, the error (an EnvelopeError with keyIndex set) names
   * the first failing one and no keys are returned.
   */
  unwrapDataKeys(namespace: string, keys: WrappedKey[]): Promise<KeyObject[]>;
  /** A static key of the Temporal samples' codec, for keyrings that hold them (UnknownKeyError if not). */
  legacyKey?(keyId: string): Promise<KeyObject>;
  /** A number that changes whenever the active key-encryption key may have changed. */
  keyGeneration?(): number;
}
