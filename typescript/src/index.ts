// @envelope/temporal-codec: envelope/v2 payload encryption for Temporal TypeScript workers, with
// the format, key file and Vault transit keys of the Go codec (docs/FORMAT.md).

export * from './errors';
export {
  EnvelopeCodec,
  type EnvelopeCodecOptions,
  DEFAULT_NAMESPACE,
  DEFAULT_DATA_KEY_MAX_USES,
  DEFAULT_DATA_KEY_MAX_AGE_MS,
  DEFAULT_DECODE_CACHE_SIZE,
  DEFAULT_DECODE_CACHE_MAX_AGE_MS,
  DEFAULT_COMPRESS_THRESHOLD,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  MAX_DATA_KEY_MAX_USES,
  MAX_DATA_KEY_MAX_AGE_MS,
} from './codec';
export type { DataKey, Keyring, WrappedKey } from './keyring';
export { SUBJECT_KEY_ID_PREFIX } from './keyring';
export { FileKeyring, FILE_KEY_ID_PREFIX, type KeyInfo } from './keyfile';
export { VaultTransitKeyring, parseKeyId, type VaultTransitOptions, type VaultKeyId } from './vault';
