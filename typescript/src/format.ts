// The byte format of sealed payloads (docs/FORMAT.md): metadata keys, additional data and the
// layout of the data field. The Go implementation is codec/internal/envelope; both read the
// vectors in codec/testdata.

import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import type { Payload } from '@temporalio/common';
import { DecryptError, MalformedError, UnsupportedError } from './errors';

export const METADATA_ENCODING = 'encoding';
export const ENCODING_ENCRYPTED = 'binary/encrypted';
export const ENCODING_ZLIB = 'binary/zlib';
export const METADATA_KEY_ID = 'encryption-key-id';
export const METADATA_WRAPPED_KEY = 'encryption-wrapped-key';
export const METADATA_FORMAT = 'encryption-format';
export const METADATA_NAMESPACE = 'encryption-namespace';
export const FORMAT_V1 = 'envelope/v1';
export const FORMAT_V2 = 'envelope/v2';

export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
export const OVERHEAD = NONCE_SIZE + TAG_SIZE;
export const MAX_KEY_ID_LEN = 512;
export const MAX_WRAPPED_KEY_LEN = 4096;
export const MAX_NAMESPACE_LEN = 255;
export const DATA_KEY_SIZE = 32;

const AAD_LABEL_V1 = Buffer.from('temporal-envelope/v1\x00', 'latin1');
const AAD_LABEL_V2 = Buffer.from('temporal-envelope/v2\x00', 'latin1');

/** What a sealed payload's metadata says about its key and, from v2 on, its namespace. Byte fields stay bytes. */
export interface Header {
  version: 1 | 2;
  /** The namespace the payload was sealed for (v2); undefined for v1. */
  namespace?: Buffer;
  keyId: Buffer;
  wrapped: Buffer;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

function bytes(v: Uint8Array | string): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** aadV1 = "temporal-envelope/v1" 0x00 ‖ u32be(len(keyID)) ‖ keyID ‖ u32be(len(wrapped)) ‖ wrapped. */
export function aadV1(keyId: Uint8Array | string, wrapped: Uint8Array): Buffer {
  const k = bytes(keyId);
  return Buffer.concat([AAD_LABEL_V1, u32(k.length), k, u32(wrapped.length), wrapped]);
}

/** aadV2 = "temporal-envelope/v2" 0x00 ‖ u32be(len(ns)) ‖ ns ‖ u32be(len(keyID)) ‖ keyID ‖ u32be(len(wrapped)) ‖ wrapped. */
export function aadV2(namespace: Uint8Array | string, keyId: Uint8Array | string, wrapped: Uint8Array): Buffer {
  const ns = bytes(namespace);
  const k = bytes(keyId);
  return Buffer.concat([AAD_LABEL_V2, u32(ns.length), ns, u32(k.length), k, u32(wrapped.length), wrapped]);
}

/** headerAAD returns the additional data of the payload h describes. */
export function headerAAD(h: Header): Buffer {
  return h.version === 2 ? aadV2(h.namespace!, h.keyId, h.wrapped) : aadV1(h.keyId, h.wrapped);
}

function md(p: Payload, key: string): Uint8Array | undefined {
  const m = p.metadata;
  if (!m || !Object.prototype.hasOwnProperty.call(m, key)) return undefined;
  return m[key] ?? undefined;
}

function text(v: Uint8Array | undefined): string | undefined {
  return v === undefined ? undefined : bytes(v).toString('utf8');
}

/** isSealed reports whether p says it is an encrypted payload. */
export function isSealed(p: Payload | null | undefined): boolean {
  return p != null && text(md(p, METADATA_ENCODING)) === ENCODING_ENCRYPTED;
}

/** isZlib reports whether p is a binary/zlib payload (the SDK's zlib codec). */
export function isZlib(p: Payload | null | undefined): boolean {
  return p != null && text(md(p, METADATA_ENCODING)) === ENCODING_ZLIB;
}

/**
 * isLegacy reports whether a sealed payload is in the static-key format of the Temporal samples:
 * an encryption-key-id (the empty ID included) and no encryption-format.
 */
export function isLegacy(p: Payload): boolean {
  const keyId = md(p, METADATA_KEY_ID);
  return md(p, METADATA_FORMAT) === undefined && keyId !== undefined && keyId.length <= MAX_KEY_ID_LEN;
}

/** legacyKeyId returns a samples payload's key ID. */
export function legacyKeyId(p: Payload): string {
  return text(md(p, METADATA_KEY_ID)) ?? '';
}

function truncate(b: Uint8Array, n = 32): string {
  const s = bytes(b);
  return s.length > n ? s.subarray(0, n).toString('utf8') + '...' : s.toString('utf8');
}

/** parseHeader reads and checks the metadata of a sealed payload, with the bounds of docs/FORMAT.md. */
export function parseHeader(p: Payload): Header {
  const format = md(p, METADATA_FORMAT);
  if (format === undefined) {
    throw new UnsupportedError(
      `unsupported encryption format: no ${METADATA_FORMAT} metadata (not an envelope payload; perhaps sealed by a static-key sample codec)`,
    );
  }
  const ns = md(p, METADATA_NAMESPACE);
  let version: 1 | 2;
  switch (text(format)) {
    case FORMAT_V1:
      version = 1;
      if (ns !== undefined) throw new MalformedError(`malformed encrypted payload: ${METADATA_NAMESPACE} in an ${FORMAT_V1} payload`);
      break;
    case FORMAT_V2:
      version = 2;
      if (ns === undefined || ns.length === 0) throw new MalformedError(`malformed encrypted payload: missing ${METADATA_NAMESPACE}`);
      if (ns.length > MAX_NAMESPACE_LEN) {
        throw new MalformedError(
          `malformed encrypted payload: ${METADATA_NAMESPACE} is ${ns.length} bytes, at most ${MAX_NAMESPACE_LEN} allowed`,
        );
      }
      break;
    default:
      throw new UnsupportedError(
        `unsupported encryption format: ${METADATA_FORMAT} is ${JSON.stringify(truncate(format))}, want "${FORMAT_V2}" or "${FORMAT_V1}"`,
      );
  }
  const keyId = md(p, METADATA_KEY_ID);
  if (keyId === undefined || keyId.length === 0) throw new MalformedError(`malformed encrypted payload: missing ${METADATA_KEY_ID}`);
  if (keyId.length > MAX_KEY_ID_LEN) {
    throw new MalformedError(`malformed encrypted payload: ${METADATA_KEY_ID} is ${keyId.length} bytes, at most ${MAX_KEY_ID_LEN} allowed`);
  }
  const wrapped = md(p, METADATA_WRAPPED_KEY);
  if (wrapped === undefined || wrapped.length === 0) throw new MalformedError(`malformed encrypted payload: missing ${METADATA_WRAPPED_KEY}`);
  if (wrapped.length > MAX_WRAPPED_KEY_LEN) {
    throw new MalformedError(
      `malformed encrypted payload: ${METADATA_WRAPPED_KEY} is ${wrapped.length} bytes, at most ${MAX_WRAPPED_KEY_LEN} allowed`,
    );
  }
  const dataLen = p.data?.length ?? 0;
  if (dataLen < OVERHEAD) throw new MalformedError(`malformed encrypted payload: data is ${dataLen} bytes, at least ${OVERHEAD} needed`);
  return { version, namespace: ns === undefined ? undefined : Buffer.from(ns), keyId: Buffer.from(keyId), wrapped: Buffer.from(wrapped) };
}

/** sealedMetadata returns a fresh metadata map for a v2 payload sealed for namespace under a data key. */
export function sealedMetadata(namespace: string, keyId: string, wrapped: Uint8Array): Record<string, Uint8Array> {
  return {
    [METADATA_ENCODING]: Buffer.from(ENCODING_ENCRYPTED),
    [METADATA_FORMAT]: Buffer.from(FORMAT_V2),
    [METADATA_NAMESPACE]: Buffer.from(namespace, 'utf8'),
    [METADATA_KEY_ID]: Buffer.from(keyId, 'utf8'),
    [METADATA_WRAPPED_KEY]: Buffer.from(wrapped),
  };
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function field(num: number, v: Uint8Array): Buffer[] {
  return [Buffer.from([(num << 3) | 2, ...varint(v.length)]), bytes(v)];
}

/**
 * marshalParts returns p in protobuf wire format as a list of buffers to be concatenated: the
 * metadata entries (key 1, value 2) in their order, then the data unless empty, as Go's
 * proto.Marshal writes them. The data is not copied. A payload with external payload details
 * goes through the SDK's protobuf encoder.
 */
export function marshalParts(p: Payload): Buffer[] {
  if (p.externalPayloads && p.externalPayloads.length > 0) {
    return [Buffer.from(temporal.api.common.v1.Payload.encode(p).finish())];
  }
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    const entry = Buffer.concat([...field(1, Buffer.from(k, 'utf8')), ...field(2, v ?? new Uint8Array())]);
    parts.push(...field(1, entry));
  }
  if (p.data && p.data.length > 0) parts.push(...field(2, p.data));
  return parts;
}

/** marshalPayload returns p in protobuf wire format (see marshalParts). */
export function marshalPayload(p: Payload): Buffer {
  return Buffer.concat(marshalParts(p));
}

/** unmarshalPayload parses a protobuf Payload into a plain object. */
export function unmarshalPayload(b: Uint8Array): Payload {
  const m = temporal.api.common.v1.Payload.decode(b);
  const out: Payload = { metadata: { ...m.metadata }, data: m.data };
  if (m.externalPayloads && m.externalPayloads.length > 0) out.externalPayloads = m.externalPayloads;
  return out;
}

/**
 * seal marshals p and seals it with AES-256-GCM under key, returning nonce ‖ ciphertext ‖ tag.
 * The nonce is 12 random bytes from crypto.randomBytes.
 */
export function seal(key: KeyObject, aad: Uint8Array | undefined, p: Payload): Buffer {
  return sealWithNonce(key, aad, p, randomBytes(NONCE_SIZE));
}

/**
 * sealWithNonce is seal with a given nonce. Only use this in tests (the vectors): a repeated nonce
 * under one key breaks AES-GCM.
 */
export function sealWithNonce(key: KeyObject, aad: Uint8Array | undefined, p: Payload, nonce: Uint8Array): Buffer {
  return sealBytes(key, aad, marshalParts(p), nonce);
}

/** sealBytes seals the concatenation of parts under key with nonce: nonce ‖ ciphertext ‖ tag. */
export function sealBytes(key: KeyObject, aad: Uint8Array | undefined, parts: Uint8Array[], nonce: Uint8Array): Buffer {
  if (nonce.length !== NONCE_SIZE) throw new Error(`nonce is ${nonce.length} bytes, want ${NONCE_SIZE}`);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  if (aad && aad.length > 0) c.setAAD(aad);
  const out: Uint8Array[] = [nonce];
  for (const part of parts) out.push(c.update(part));
  c.final();
  out.push(c.getAuthTag());
  return Buffer.concat(out);
}

/** openBytes opens nonce ‖ ciphertext ‖ tag under key; any failure is a DecryptError. */
export function openBytes(key: KeyObject, aad: Uint8Array | undefined, data: Uint8Array): Buffer {
  if (data.length < OVERHEAD) {
    throw new MalformedError(`malformed encrypted payload: data is ${data.length} bytes, at least ${OVERHEAD} needed`);
  }
  try {
    const d = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_SIZE));
    if (aad && aad.length > 0) d.setAAD(aad);
    d.setAuthTag(data.subarray(data.length - TAG_SIZE));
    const pt = d.update(data.subarray(NONCE_SIZE, data.length - TAG_SIZE));
    d.final();
    return pt;
  } catch {
    throw new DecryptError('payload does not decrypt: tampered, truncated or sealed under another key');
  }
}

/** open opens the data of a sealed payload and unmarshals the original payload. */
export function open(key: KeyObject, aad: Uint8Array | undefined, data: Uint8Array): Payload {
  const pt = openBytes(key, aad, data);
  try {
    return unmarshalPayload(pt);
  } catch {
    throw new MalformedError('malformed encrypted payload: decrypted bytes are not a payload');
  }
}
