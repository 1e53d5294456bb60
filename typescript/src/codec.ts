// EnvelopeCodec: the PayloadCodec of @temporalio/common that seals payloads in envelope/v2,
// the format of the Go codec (docs/FORMAT.md), so TypeScript and Go workers share histories.

import { randomBytes, type KeyObject } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';
import type { Payload, PayloadCodec, SerializationContext } from '@temporalio/common';
import {
  EnvelopeError,
  MalformedError,
  NamespaceError,
  NotEncryptedError,
  SubjectKeyNotSupportedError,
  UnsupportedError,
  wrapError,
} from './errors';
import {
  ENCODING_ZLIB,
  FORMAT_V1,
  MAX_NAMESPACE_LEN,
  METADATA_ENCODING,
  aadV2,
  headerAAD,
  isLegacy,
  isSealed,
  isZlib,
  legacyKeyId,
  NONCE_SIZE,
  marshalParts,
  open,
  parseHeader,
  sealBytes,
  sealedMetadata,
  unmarshalPayload,
  type Header,
} from './format';
import { SUBJECT_KEY_ID_PREFIX, type Keyring, type WrappedKey } from './keyring';

export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_DATA_KEY_MAX_USES = 2 ** 20;
export const DEFAULT_DATA_KEY_MAX_AGE_MS = 60 * 60 * 1000;
export const DEFAULT_DECODE_CACHE_SIZE = 1024;
export const DEFAULT_DECODE_CACHE_MAX_AGE_MS = 15 * 60 * 1000;
export const DEFAULT_COMPRESS_THRESHOLD = 256;
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 << 20;
/** The NIST SP 800-38D limit on AES-GCM invocations with random 96-bit nonces under one key. */
export const MAX_DATA_KEY_MAX_USES = 2 ** 32;
export const MAX_DATA_KEY_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** Options of EnvelopeCodec: the Go codec.Options, same defaults and bounds. All fields are optional. */
export interface EnvelopeCodecOptions {
  /**
   * The namespace assumed when the SDK passes no serialization context. Default "default". Set it
   * to the worker's namespace: payloads are sealed for it and open only there.
   */
  namespace?: string;
  /** namespaceAliases["new"] = ["old"] lets namespace new open what was sealed for old, one way. Default: none. */
  namespaceAliases?: Record<string, string[]>;
  /** Refuse envelope/v1 payloads (not namespace-bound) with UnsupportedError. Default false. */
  refuseV1?: boolean;
  /** Refuse the Temporal samples' static-key payloads with UnsupportedError. Default false. */
  refuseLegacy?: boolean;
  /** Fail with NotEncryptedError on a payload that is not sealed, instead of passing it through. Default false. */
  requireEncryption?: boolean;
  /** Payloads sealed under one data key before a new one is asked for. Default 2^20; at most 2^32. */
  dataKeyMaxUses?: number;
  /** How long one data key seals, in milliseconds. Default one hour; at most 24 hours. */
  dataKeyMaxAgeMs?: number;
  /** Unwrapped data keys kept for decoding (least recently used out). Default 1024. */
  decodeCacheSize?: number;
  /** How long an unwrapped data key is reused before the keyring is asked again, in ms. Default 15 minutes. */
  decodeCacheMaxAgeMs?: number;
  /**
   * Compress payloads of at least compressThreshold bytes (marshalled) with zlib before sealing,
   * when smaller. Only use this if the length of a sealed payload may reveal how compressible its
   * plaintext is (docs/FORMAT.md, "Compression"). Decode always decompresses. Default off.
   */
  compress?: boolean;
  /** Default 256 bytes. */
  compressThreshold?: number;
  /** What one decode call decompresses at most, all payloads together. Default 64 MiB. */
  maxDecompressedBytes?: number;
  /** The clock, in milliseconds. Default Date.now. */
  now?: () => number;
}

interface SealKey {
  key: KeyObject;
  aad: Buffer;
  keyId: string;
  wrapped: Uint8Array;
  expires: number;
  gen: number;
  uses: number;
}

interface OpenKey {
  key: KeyObject;
  aad?: Buffer;
  keyId: string;
  expires: number;
}

interface Pending {
  cacheKey: string;
  h: Header;
  namespace: string; // the namespace the keyring unwraps for
  at: number[];
}

function nonNegative(name: string, v: number | undefined): number | undefined {
  if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new Error(`codec: ${name} is ${v}, want a number >= 0`);
  return v || undefined;
}

/**
 * EnvelopeCodec seals payloads with AES-256-GCM under data keys wrapped by a keyring, in the
 * envelope/v2 format with the namespace bound in the additional data, and opens v2, v1 and the
 * Temporal samples' static-key payloads. It implements PayloadCodec.
 */
export class EnvelopeCodec implements PayloadCodec {
  private readonly namespace: string;
  private readonly aliases: Map<string, string[]>;
  private readonly opts: Required<Omit<EnvelopeCodecOptions, 'namespace' | 'namespaceAliases'>>;
  private readonly enc = new Map<string, SealKey>();
  private readonly encPending = new Map<string, Promise<void>>();
  private readonly dec = new Map<string, OpenKey>(); // LRU: Map keeps insertion order
  private readonly legacy = new Map<string, OpenKey>();

  constructor(
    private readonly keyring: Keyring,
    options: EnvelopeCodecOptions = {},
  ) {
    if (!keyring) throw new Error('codec: nil keyring');
    this.namespace = options.namespace || DEFAULT_NAMESPACE;
    if (Buffer.byteLength(this.namespace) > MAX_NAMESPACE_LEN) {
      throw new Error(`codec: namespace is ${Buffer.byteLength(this.namespace)} bytes, at most ${MAX_NAMESPACE_LEN} allowed`);
    }
    this.aliases = new Map();
    for (const [ns, from] of Object.entries(options.namespaceAliases ?? {})) {
      if (ns === '' || Buffer.byteLength(ns) > MAX_NAMESPACE_LEN) throw new Error('codec: namespaceAliases: a namespace is empty or longer than 255 bytes');
      for (const f of from) {
        if (f === '' || Buffer.byteLength(f) > MAX_NAMESPACE_LEN) {
          throw new Error(`codec: namespaceAliases[${JSON.stringify(ns)}]: a namespace is empty or longer than 255 bytes`);
        }
        if (f === ns) throw new Error(`codec: namespaceAliases[${JSON.stringify(ns)}] names the namespace itself`);
      }
      this.aliases.set(ns, [...from]);
    }
    const maxUses = nonNegative('dataKeyMaxUses', options.dataKeyMaxUses) ?? DEFAULT_DATA_KEY_MAX_USES;
    if (maxUses > MAX_DATA_KEY_MAX_USES) {
      throw new Error(`codec: dataKeyMaxUses is ${maxUses}, at most ${MAX_DATA_KEY_MAX_USES} (2^32, the NIST SP 800-38D limit for random nonces) allowed`);
    }
    const maxAge = nonNegative('dataKeyMaxAgeMs', options.dataKeyMaxAgeMs) ?? DEFAULT_DATA_KEY_MAX_AGE_MS;
    if (maxAge > MAX_DATA_KEY_MAX_AGE_MS) throw new Error(`codec: dataKeyMaxAgeMs is ${maxAge}, at most ${MAX_DATA_KEY_MAX_AGE_MS} (24 hours) allowed`);
    this.opts = {
      refuseV1: options.refuseV1 ?? false,
      refuseLegacy: options.refuseLegacy ?? false,
      requireEncryption: options.requireEncryption ?? false,
      dataKeyMaxUses: maxUses,
      dataKeyMaxAgeMs: maxAge,
      decodeCacheSize: nonNegative('decodeCacheSize', options.decodeCacheSize) ?? DEFAULT_DECODE_CACHE_SIZE,
      decodeCacheMaxAgeMs: nonNegative('decodeCacheMaxAgeMs', options.decodeCacheMaxAgeMs) ?? DEFAULT_DECODE_CACHE_MAX_AGE_MS,
      compress: options.compress ?? false,
      compressThreshold: nonNegative('compressThreshold', options.compressThreshold) ?? DEFAULT_COMPRESS_THRESHOLD,
      maxDecompressedBytes: nonNegative('maxDecompressedBytes', options.maxDecompressedBytes) ?? DEFAULT_MAX_DECOMPRESSED_BYTES,
      now: options.now ?? Date.now,
    };
  }

  private namespaceOf(context?: SerializationContext): string {
    return context?.namespace || this.namespace;
  }

  /**
   * encode seals every payload under the namespace's current data key (the context's namespace,
   * else the codec's). Payloads already sealed are returned unchanged. The input is not modified.
   */
  async encode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    const ns = this.namespaceOf(context);
    const out: Payload[] = new Array(payloads.length);
    for (let i = 0; i < payloads.length; i++) {
      const p = payloads[i];
      if (p == null || isSealed(p)) {
        out[i] = p;
        continue;
      }
      try {
        const k = await this.sealKey(ns);
        let parts = marshalParts(p);
        if (this.opts.compress) {
          const size = parts.reduce((n, b) => n + b.length, 0);
          if (size >= this.opts.compressThreshold) {
            const z = deflateSync(Buffer.concat(parts, size));
            if (z.length < size) parts = marshalParts({ metadata: { [METADATA_ENCODING]: Buffer.from(ENCODING_ZLIB) }, data: z });
          }
        }
        out[i] = { metadata: sealedMetadata(ns, k.keyId, k.wrapped), data: sealBytes(k.key, k.aad, parts, randomBytes(NONCE_SIZE)) };
      } catch (e) {
        throw wrapError(`codec: encode payload ${i}`, e);
      }
    }
    return out;
  }

  /**
   * sealKey returns a data key for one payload, counting the use. It asks the keyring for a new key
   * when the cached one is used up, too old, or from an older key generation (rotation).
   */
  private async sealKey(ns: string): Promise<SealKey> {
    for (;;) {
      const now = this.opts.now();
      const gen = this.keyring.keyGeneration?.() ?? 0;
      const k = this.enc.get(ns);
      if (k && now < k.expires && k.gen === gen && k.uses < this.opts.dataKeyMaxUses) {
        k.uses++;
        return k;
      }
      let pending = this.encPending.get(ns);
      if (!pending) {
        pending = this.newSealKey(ns, gen).finally(() => this.encPending.delete(ns));
        this.encPending.set(ns, pending);
      }
      await pending;
    }
  }

  private async newSealKey(ns: string, gen: number): Promise<void> {
    if (Buffer.byteLength(ns) > MAX_NAMESPACE_LEN) {
      // Decode refuses such a payload: sealing it would lose the data.
      throw new MalformedError(`namespace is ${Buffer.byteLength(ns)} bytes, at most ${MAX_NAMESPACE_LEN} allowed`);
    }
    this.enc.delete(ns);
    const dk = await this.keyring.newDataKey(ns);
    this.enc.set(ns, {
      key: dk.key,
      aad: aadV2(ns, dk.keyId, dk.wrapped),
      keyId: dk.keyId,
      wrapped: Buffer.from(dk.wrapped),
      expires: this.opts.now() + this.opts.dataKeyMaxAgeMs,
      gen,
      uses: 0,
    });
  }

  /**
   * decode opens every sealed payload and returns the others unchanged. Data keys that are not
   * cached are unwrapped in one keyring call (per namespace), each distinct wrapped key once.
   * If any payload fails, it throws an error naming its index, and returns nothing.
   */
  async decode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    const ns = this.namespaceOf(context);
    const now = this.opts.now();
    const keys: (OpenKey | undefined)[] = new Array(payloads.length);
    const missing = new Map<string, Pending>();
    for (let i = 0; i < payloads.length; i++) {
      const p = payloads[i];
      if (!isSealed(p)) {
        if (p != null && this.opts.requireEncryption) {
          throw new NotEncryptedError(`codec: decode payload ${i}: payload is not encrypted and encryption is required`);
        }
        continue;
      }
      try {
        if (isLegacy(p)) {
          const id = legacyKeyId(p);
          if (this.opts.refuseLegacy) {
            throw new UnsupportedError(
              `unsupported encryption format: payload is in the static-key format of the Temporal samples (key ${JSON.stringify(truncateId(id))}) and legacy decoding is off`,
            );
          }
          keys[i] = await this.legacyKey(id, now);
          continue;
        }
        const h = parseHeader(p);
        this.admit(ns, h);
        const kn = h.version === 2 && h.namespace!.toString('utf8') !== ns ? h.namespace!.toString('utf8') : ns;
        const cacheKey = `${kn}\x00${h.version}\x00${h.keyId.toString('base64')}\x00${h.wrapped.toString('base64')}`;
        const cached = this.dec.get(cacheKey);
        if (cached && now < cached.expires) {
          this.dec.delete(cacheKey); // most recently used last
          this.dec.set(cacheKey, cached);
          keys[i] = cached;
          continue;
        }
        let m = missing.get(cacheKey);
        if (!m) {
          m = { cacheKey, h, namespace: kn, at: [] };
          missing.set(cacheKey, m);
        }
        m.at.push(i);
      } catch (e) {
        throw wrapError(`codec: decode payload ${i}`, e);
      }
    }
    if (missing.size > 0) await this.unwrap([...missing.values()], keys, now);
    let budget = this.opts.maxDecompressedBytes;
    const out: Payload[] = new Array(payloads.length);
    for (let i = 0; i < payloads.length; i++) {
      const k = keys[i];
      if (!k) {
        out[i] = payloads[i];
        continue;
      }
      try {
        let p = open(k.key, k.aad, payloads[i].data ?? new Uint8Array());
        if (isZlib(p)) {
          // Compressed before sealing (the compress option, the samples' zlib codec). One level only.
          const [q, used] = inflate(p, budget);
          p = q;
          budget -= used;
        }
        out[i] = p;
      } catch (e) {
        throw wrapError(`codec: decode payload ${i} (key ${JSON.stringify(k.keyId)})`, e);
      }
    }
    return out;
  }

  /** admit checks, before any keyring call, that namespace ns may open a payload with header h. */
  private admit(ns: string, h: Header): void {
    if (h.version !== 2) {
      if (this.opts.refuseV1) {
        throw new UnsupportedError(
          `unsupported encryption format: ${FORMAT_V1} payloads are not bound to a namespace and this codec refuses them (refuseV1)`,
        );
      }
      return;
    }
    const sealed = h.namespace!;
    if (sealed.equals(Buffer.from(ns, 'utf8'))) return;
    for (const a of this.aliases.get(ns) ?? []) if (sealed.equals(Buffer.from(a, 'utf8'))) return;
    throw NamespaceError.of(sealed.toString('utf8'), ns);
  }

  /** unwrap unwraps the missing keys, one keyring call per namespace they are unwrapped for. */
  private async unwrap(missing: Pending[], keys: (OpenKey | undefined)[], now: number): Promise<void> {
    const groups = new Map<string, Pending[]>();
    for (const m of missing) {
      const g = groups.get(m.namespace);
      if (g) g.push(m);
      else groups.set(m.namespace, [m]);
    }
    for (const [ns, group] of groups) {
      const req: WrappedKey[] = group.map((m) => ({ keyId: m.h.keyId.toString('utf8'), wrapped: m.h.wrapped }));
      const subject = req.findIndex((r) => r.keyId.startsWith(SUBJECT_KEY_ID_PREFIX));
      if (subject >= 0) {
        const id = req[subject].keyId;
        throw new SubjectKeyNotSupportedError(
          `codec: decode payload ${group[subject].at[0]}: key ${JSON.stringify(SUBJECT_KEY_ID.test(id) ? id : truncateId(id))} is a data subject's key ` +
            '(docs/ERASURE.md), which TypeScript workers do not support yet: open it with the Go codec or the codec server: unknown key id',
        );
      }
      let secrets: KeyObject[];
      try {
        secrets = await this.keyring.unwrapDataKeys(ns, req);
      } catch (e) {
        let first = Math.min(...group.map((m) => m.at[0]));
        const j = e instanceof EnvelopeError ? e.keyIndex : undefined;
        if (j !== undefined && j >= 0 && j < group.length) first = group[j].at[0];
        throw wrapError(`codec: decode payload ${first}: unwrap data key`, e);
      }
      if (secrets.length !== group.length) throw new EnvelopeError(`codec: keyring returned ${secrets.length} data keys, want ${group.length}`);
      group.forEach((m, j) => {
        const k: OpenKey = { key: secrets[j], aad: headerAAD(m.h), keyId: req[j].keyId, expires: now + this.opts.decodeCacheMaxAgeMs };
        this.dec.set(m.cacheKey, k);
        while (this.dec.size > this.opts.decodeCacheSize) this.dec.delete(this.dec.keys().next().value!);
        for (const i of m.at) keys[i] = k;
      });
    }
  }

  private async legacyKey(id: string, now: number): Promise<OpenKey> {
    const cached = this.legacy.get(id);
    if (cached && now < cached.expires) return cached;
    if (!this.keyring.legacyKey) {
      throw new UnsupportedError(
        `unsupported encryption format: payload is in the static-key format of the Temporal samples (key ${JSON.stringify(truncateId(id))}) and the keyring holds no legacy keys`,
      );
    }
    let key: KeyObject;
    try {
      key = await this.keyring.legacyKey(id);
    } catch (e) {
      throw wrapError('static-key sample payload', e);
    }
    const k: OpenKey = { key, keyId: id, expires: now + this.opts.decodeCacheMaxAgeMs };
    this.legacy.set(id, k);
    return k;
  }
}

/** inflate decompresses a binary/zlib payload within budget bytes; it returns the payload and the bytes used. */
function inflate(p: Payload, budget: number): [Payload, number] {
  if (budget < 1) throw new MalformedError('malformed encrypted payload: binary/zlib payload: decompressed size exceeds the limit');
  let raw: Buffer;
  try {
    raw = inflateSync(p.data ?? new Uint8Array(), { maxOutputLength: budget });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new MalformedError('malformed encrypted payload: binary/zlib payload: decompressed size exceeds the limit');
    }
    throw new MalformedError('malformed encrypted payload: binary/zlib payload: corrupt zlib stream');
  }
  try {
    return [unmarshalPayload(raw), raw.length];
  } catch {
    throw new MalformedError('malformed encrypted payload: binary/zlib payload: decompressed bytes are not a payload');
  }
}

/** A well-formed data subject key ID: shown whole in messages (the handle is a pseudonym, not the subject). */
const SUBJECT_KEY_ID = /^subject\/(dir|vault)\/[0-9a-f]{32}\/[0-9a-f]{16}$/;

/** truncateId cuts a payload's key ID to 16 characters for messages: it may be a pasted key. */
function truncateId(id: string): string {
  return id.length > 16 ? id.slice(0, 16) + '...' : id;
}

