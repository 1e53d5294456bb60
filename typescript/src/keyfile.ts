// The key file keyring: the same JSON file, with the same strict parser rules, as the Go
// keyring.File (keyring/file.go, docs/FORMAT.md "The key file").

import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { promises as fs, constants as fsConstants } from 'node:fs';
import { EnvelopeError, UnknownKeyError, UnwrapError } from './errors';
import type { DataKey, Keyring, WrappedKey } from './keyring';
import { DATA_KEY_SIZE } from './format';

/** Starts the key ID of every key from a key file. */
export const FILE_KEY_ID_PREFIX = 'local/';

const FILE_FORMAT_VERSION = 2;
const WRAP_NONCE_SIZE = 12;
const WRAPPED_SIZE = WRAP_NONCE_SIZE + DATA_KEY_SIZE + 16;
const MAX_FILE_SIZE = 1 << 20;
const MAX_KEY_ID_LEN = 128;
const CANONICAL_FIELD_NAMES = ['version', 'active', 'keys', 'id', 'created', 'key', 'legacy', 'promoted', 'retired'];
const TOP_FIELDS = new Set(['version', 'active', 'keys']);
const KEY_FIELDS = new Set(['id', 'created', 'key', 'legacy', 'promoted', 'retired']);

/** A key of a key file, without its material. */
export interface KeyInfo {
  /** The ID inside the file, without `local/`. */
  id: string;
  created: string;
  active: boolean;
  legacy: boolean;
  promoted?: string;
  retired?: string;
}

interface KeySet {
  active: string; // full ID
  keys: Map<string, KeyObject>; // full ID -> KEK
  legacy: Map<string, KeyObject>; // plain ID -> static key
  retired: Set<string>; // full IDs (legacy ones without prefix)
  infos: KeyInfo[];
  digest: string;
}

class KeyFileError extends EnvelopeError {}

/** wrapAAD binds a wrapped data key to the full key ID (`local/<id>`) that wrapped it. */
export function wrapAAD(keyId: string): Buffer {
  return Buffer.concat([Buffer.from('envelope/kek-wrap/v1\x00', 'latin1'), Buffer.from(keyId, 'utf8')]);
}

/**
 * checkFieldNames walks the JSON text and refuses an object with two field names equal ignoring
 * case, and a key file field name spelled in another case ("KEY"), as the Go parser does:
 * JSON.parse would take the last of two, Go's decoder ignores case.
 */
function checkFieldNames(text: string): void {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) throw new KeyFileError('malformed JSON: unexpected end of input');
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      throw new KeyFileError(`malformed JSON: syntax error at byte ${start}`);
    }
  };
  const value = (depth: number): void => {
    if (depth > 16) throw new KeyFileError('malformed JSON: nested too deeply');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const names = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') throw new KeyFileError(`malformed JSON: syntax error at byte ${i}`);
        const name = str();
        const folded = name.toLowerCase();
        const canonical = CANONICAL_FIELD_NAMES.find((n) => n.toLowerCase() === folded) ?? '';
        if (canonical !== '' && name !== canonical) throw new KeyFileError(`field ${JSON.stringify(name)} must be spelled ${JSON.stringify(canonical)}`);
        if (names.has(folded)) {
          throw new KeyFileError(canonical !== '' ? `duplicate field ${JSON.stringify(canonical)}` : 'duplicate field name');
        }
        names.add(folded);
        ws();
        if (text[i] !== ':') throw new KeyFileError(`malformed JSON: syntax error at byte ${i}`);
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        throw new KeyFileError(`malformed JSON: syntax error at byte ${i}`);
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        throw new KeyFileError(`malformed JSON: syntax error at byte ${i}`);
      }
    } else if (c === '"') {
      str();
    } else {
      while (i < text.length && !',]} \t\r\n'.includes(text[i])) i++;
    }
  };
  value(0);
}

function validKeyId(id: string): string | undefined {
  if (id === '') return 'empty id';
  const n = Buffer.byteLength(id, 'utf8');
  if (n > MAX_KEY_ID_LEN) return `id is ${n} bytes, at most ${MAX_KEY_ID_LEN} allowed`;
  // Do not quote the id: a bad id may be key material in the wrong field.
  if (!/^[A-Za-z0-9._-]+$/.test(id)) return "id has characters other than letters, digits, '-', '_' and '.'";
  return undefined;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function typeError(field: string): KeyFileError {
  return new KeyFileError(`malformed JSON: field ${JSON.stringify(field)} has the wrong type`);
}

function unknownField(name: string): KeyFileError {
  // Quote a short name (a typo); a long one may be a pasted key.
  if (name.length > 20) {
    return new KeyFileError(
      `malformed JSON: unknown field (a ${name.length}-byte name, not quoted: it may be key material); fields are ${CANONICAL_FIELD_NAMES.join(', ')}`,
    );
  }
  return new KeyFileError(`malformed JSON: unknown field ${JSON.stringify(name)}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON null leaves a field at its zero value, as Go's decoder does. */
function stringField(o: Record<string, unknown>, name: string, path: string): string | undefined {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw typeError(path);
  return v;
}

function timeField(o: Record<string, unknown>, name: string, path: string): string | undefined {
  const v = stringField(o, name, path);
  if (v !== undefined && !RFC3339.test(v)) throw typeError(path);
  return v;
}

/** parseKeyFile parses and validates a key file. Errors never contain key material. */
export function parseKeyFile(data: Uint8Array): KeySet {
  if (data.length > MAX_FILE_SIZE) throw new KeyFileError(`file is ${data.length} bytes, more than the ${MAX_FILE_SIZE} allowed`);
  const text = Buffer.from(data).toString('utf8');
  checkFieldNames(text);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new KeyFileError('malformed JSON: cannot parse');
  }
  if (doc !== null && !isObject(doc)) throw typeError('');
  const f = (doc ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(f)) if (!TOP_FIELDS.has(name)) throw unknownField(name);
  const version = f.version ?? 0;
  if (typeof version !== 'number' || !Number.isInteger(version)) throw typeError('version');
  const active = stringField(f, 'active', 'active') ?? '';
  const keys = f.keys ?? [];
  if (!Array.isArray(keys)) throw typeError('keys');
  if (version !== 1 && version !== FILE_FORMAT_VERSION) throw new KeyFileError(`unsupported version ${version}, want 1 or ${FILE_FORMAT_VERSION}`);
  if (keys.length === 0) throw new KeyFileError('no keys');

  const ks: KeySet = { active: '', keys: new Map(), legacy: new Map(), retired: new Set(), infos: [], digest: '' };
  const seen = new Set<string>();
  keys.forEach((raw: unknown, i: number) => {
    if (raw !== null && !isObject(raw)) throw typeError(`keys`);
    const k = (raw ?? {}) as Record<string, unknown>;
    for (const name of Object.keys(k)) if (!KEY_FIELDS.has(name)) throw unknownField(name);
    const id = stringField(k, 'id', 'keys.id') ?? '';
    const created = timeField(k, 'created', 'keys.created') ?? '0001-01-01T00:00:00Z';
    const material = stringField(k, 'key', 'keys.key') ?? '';
    const legacyRaw = k.legacy ?? false;
    if (typeof legacyRaw !== 'boolean') throw typeError('keys.legacy');
    const legacy = legacyRaw;
    const promoted = timeField(k, 'promoted', 'keys.promoted');
    const retired = timeField(k, 'retired', 'keys.retired');
    const bad = legacy && id === '' ? undefined : validKeyId(id);
    if (bad) throw new KeyFileError(`key ${i}: ${bad}`);
    if (seen.has(id)) throw new KeyFileError(`key ${i}: duplicate id ${JSON.stringify(id)}`);
    seen.add(id);
    if (version < 2 && (promoted !== undefined || retired !== undefined)) {
      throw new KeyFileError(`key ${JSON.stringify(id)}: "promoted" and "retired" need version 2`);
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(material) || material.length % 4 !== 0) {
      throw new KeyFileError(`key ${JSON.stringify(id)}: key is not valid base64`);
    }
    const bytes = Buffer.from(material, 'base64');
    if (bytes.length !== DATA_KEY_SIZE) throw new KeyFileError(`key ${JSON.stringify(id)}: key is ${bytes.length} bytes, want ${DATA_KEY_SIZE}`);
    const fullId = legacy ? id : FILE_KEY_ID_PREFIX + id;
    const info: KeyInfo = { id, created, active: !legacy && id === active, legacy };
    if (promoted !== undefined) info.promoted = promoted;
    else if (version < 2 && !legacy) info.promoted = created; // version 1 made every new key active
    if (retired !== undefined) {
      info.retired = retired;
      ks.retired.add(fullId);
    }
    ks.infos.push(info);
    if (retired === undefined) {
      (legacy ? ks.legacy : ks.keys).set(fullId, createSecretKey(bytes));
    }
    bytes.fill(0);
  });
  if (active === '') throw new KeyFileError('no active key id');
  const bad = validKeyId(active);
  if (bad) throw new KeyFileError(`active key id: ${bad}`);
  if (!ks.keys.has(FILE_KEY_ID_PREFIX + active)) {
    if (ks.legacy.has(active)) throw new KeyFileError(`active key id ${JSON.stringify(active)} is a legacy key, which only decodes`);
    if (ks.retired.has(FILE_KEY_ID_PREFIX + active)) throw new KeyFileError(`active key id ${JSON.stringify(active)} is retired`);
    throw new KeyFileError(`active key id ${JSON.stringify(active)} is not among the keys`);
  }
  ks.active = FILE_KEY_ID_PREFIX + active;
  ks.digest = createHash('sha256').update(data).digest('hex');
  return ks;
}

/**
 * FileKeyring is a keyring read from a local JSON key file, the one the Go codec and the codec
 * server read. Key IDs are `local/<id>`. Call reload() to pick up changes (rotation).
 */
export class FileKeyring implements Keyring {
  private ks: KeySet;
  private gen = 0;

  private constructor(
    private readonly path: string,
    ks: KeySet,
  ) {
    this.ks = ks;
  }

  /**
   * open loads the key file at path. It refuses a file that anyone but its owner can write
   * (mode bits 0o022), as the Go keyring does.
   */
  static async open(path: string): Promise<FileKeyring> {
    return new FileKeyring(path, await load(path));
  }

  /** fromBytes parses a key file's contents (tests, or a file read by other means). */
  static fromBytes(data: Uint8Array): FileKeyring {
    return new FileKeyring('', parseKeyFile(data));
  }

  /** reload reads the key file again; on error the loaded keys stay. It reports whether they changed. */
  async reload(): Promise<boolean> {
    const ks = await load(this.path);
    if (ks.digest === this.ks.digest) return false;
    this.ks = ks;
    this.gen++;
    return true;
  }

  keyGeneration(): number {
    return this.gen;
  }

  /**
   * watch reloads the key file every intervalMs (default 10 s), as the Go keyring's Watch does,
   * so a rotated key seals new payloads without a restart. A failed reload keeps the loaded keys
   * and is passed to onError. It returns a function that stops watching; the timer does not keep
   * the process alive.
   */
  watch(intervalMs = 10_000, onError: (err: Error) => void = () => {}): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.reload()
        .catch((e: Error) => onError(e))
        .finally(() => (running = false));
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** keys lists the file's keys without their material. */
  keys(): KeyInfo[] {
    return this.ks.infos.map((k) => ({ ...k }));
  }

  async newDataKey(_namespace: string): Promise<DataKey> {
    const ks = this.ks;
    const kek = ks.keys.get(ks.active)!;
    const dek = randomBytes(DATA_KEY_SIZE);
    const nonce = randomBytes(WRAP_NONCE_SIZE);
    const c = createCipheriv('aes-256-gcm', kek, nonce);
    c.setAAD(wrapAAD(ks.active));
    const ct = c.update(dek);
    c.final();
    const key = createSecretKey(dek);
    dek.fill(0);
    return { keyId: ks.active, wrapped: Buffer.concat([nonce, ct, c.getAuthTag()]), key };
  }

  async unwrapDataKeys(_namespace: string, keys: WrappedKey[]): Promise<KeyObject[]> {
    const ks = this.ks;
    return keys.map((k, i) => {
      const kek = ks.keys.get(k.keyId);
      if (!kek) {
        const why = ks.retired.has(k.keyId) ? ' is retired' : '';
        throw keyError(new UnknownKeyError(`keyring: key ${JSON.stringify(k.keyId)}${why}: unknown key id`), i);
      }
      if (k.wrapped.length !== WRAPPED_SIZE) {
        throw keyError(
          new UnwrapError(`keyring: key ${JSON.stringify(k.keyId)}: wrapped data key is ${k.wrapped.length} bytes, want ${WRAPPED_SIZE}: cannot unwrap data key`),
          i,
        );
      }
      try {
        const d = createDecipheriv('aes-256-gcm', kek, k.wrapped.subarray(0, WRAP_NONCE_SIZE));
        d.setAAD(wrapAAD(k.keyId));
        d.setAuthTag(k.wrapped.subarray(WRAP_NONCE_SIZE + DATA_KEY_SIZE));
        const dek = d.update(k.wrapped.subarray(WRAP_NONCE_SIZE, WRAP_NONCE_SIZE + DATA_KEY_SIZE));
        d.final();
        const key = createSecretKey(dek);
        dek.fill(0);
        return key;
      } catch {
        throw keyError(new UnwrapError(`keyring: key ${JSON.stringify(k.keyId)}: cannot unwrap data key`), i);
      }
    });
  }

  async legacyKey(keyId: string): Promise<KeyObject> {
    const k = this.ks.legacy.get(keyId);
    if (k) return k;
    if (this.ks.retired.has(keyId)) throw new UnknownKeyError(`keyring: legacy key ${JSON.stringify(keyId)} is retired: unknown key id`);
    // The ID comes from a payload: cut it short, it may be a key pasted in the wrong place.
    const shown = keyId.length > 16 ? keyId.slice(0, 16) + '...' : keyId;
    throw new UnknownKeyError(`keyring: legacy key ${JSON.stringify(shown)}: unknown key id`);
  }

  toString(): string {
    return `FileKeyring(${this.path})`;
  }
}

/** keyError marks which key of an unwrapDataKeys call failed. */
export function keyError<E extends EnvelopeError>(e: E, index: number): E {
  e.keyIndex = index;
  return e;
}

async function load(path: string): Promise<KeySet> {
  const fh = await fs.open(path, fsConstants.O_RDONLY);
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new KeyFileError(`keyring: key file ${path} is a directory`);
    if ((st.mode & 0o022) !== 0) {
      throw new KeyFileError(
        `keyring: key file ${path}: mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} lets group or others write it; restrict it with chmod 600 (or 0640/0440)`,
      );
    }
    const buf = Buffer.alloc(MAX_FILE_SIZE + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) break;
    }
    try {
      return parseKeyFile(buf.subarray(0, n));
    } catch (e) {
      throw new KeyFileError(`keyring: key file ${path}: ${(e as Error).message}`);
    } finally {
      buf.fill(0);
    }
  } finally {
    await fh.close();
  }
}
