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

/** A JSON value as the parser read it: objects keep their fields in document order, numbers their text. */
type Node =
  | { t: 'object'; fields: [string, Node][] }
  | { t: 'array'; items: Node[] }
  | { t: 'string'; value: string; raw: string }
  | { t: 'number'; raw: string }
  | { t: 'bool'; value: boolean }
  | { t: 'null' };

const STRING = /"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*"/y;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * parseJSON parses a key file's text strictly, as the Go parser's first pass (checkFieldNames)
 * does: JSON's grammar, at most 16 levels, nothing but white space after the document, and no
 * object with two field names equal ignoring case or a key file field name spelled in another
 * case ("KEY"): JSON.parse would take the last of two, Go's decoder ignores case.
 */
function parseJSON(text: string): Node {
  let i = 0;
  const syntax = (): KeyFileError =>
    i >= text.length
      ? new KeyFileError('malformed JSON: unexpected end of input')
      : new KeyFileError(`malformed JSON: syntax error at byte ${Buffer.byteLength(text.slice(0, i + 1))}`);
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  const str = (): { value: string; raw: string } => {
    STRING.lastIndex = i;
    const m = STRING.exec(text);
    if (!m) {
      // Find where it goes wrong, for the error.
      i++;
      while (i < text.length && text[i] !== '"' && text[i] >= ' ') i += text[i] === '\\' ? 2 : 1;
      throw syntax();
    }
    i += m[0].length;
    // Go's decoder turns an unpaired surrogate into U+FFFD; JSON.parse keeps it.
    return { value: (JSON.parse(m[0]) as string).replace(LONE_SURROGATE, '\uFFFD'), raw: m[0] };
  };
  const value = (depth: number): Node => {
    if (depth > 16) throw new KeyFileError('malformed JSON: nested too deeply');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const fields: [string, Node][] = [];
      const names = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return { t: 'object', fields };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') throw syntax();
        const name = str().value;
        const folded = goToLower(name);
        const canonical = CANONICAL_FIELD_NAMES.find((n) => goEqualFold(name, n)) ?? '';
        if (canonical !== '' && name !== canonical) throw new KeyFileError(`field ${goQuote(name)} must be spelled ${goQuote(canonical)}`);
        if (names.has(folded)) throw new KeyFileError(canonical !== '' ? `duplicate field ${goQuote(canonical)}` : 'duplicate field name');
        names.add(folded);
        ws();
        if (text[i] !== ':') throw syntax();
        i++;
        fields.push([name, value(depth + 1)]);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { t: 'object', fields };
        }
        throw syntax();
      }
    }
    if (c === '[') {
      i++;
      const items: Node[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { t: 'array', items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return { t: 'array', items };
        }
        throw syntax();
      }
    }
    if (c === '"') return { t: 'string', ...str() };
    const lit = c === 't' ? 'true' : c === 'f' ? 'false' : c === 'n' ? 'null' : '';
    if (lit !== '') {
      // As Go's scanner: a literal cut short by the end of the text is the end of input.
      for (const ch of lit) {
        if (i >= text.length || text[i] !== ch) throw syntax();
        i++;
      }
      return lit === 'null' ? { t: 'null' } : { t: 'bool', value: lit === 'true' };
    }
    // A number, scanned as Go's scanner does: it ends at the first byte that cannot continue it.
    const start = i;
    const digits = () => {
      if (i >= text.length || text[i] < '0' || text[i] > '9') throw syntax();
      while (i < text.length && text[i] >= '0' && text[i] <= '9') i++;
    };
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else digits();
    if (text[i] === '.') {
      i++;
      digits();
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      digits();
    }
    return { t: 'number', raw: text.slice(start, i) };
  };
  const doc = value(0);
  ws();
  if (i < text.length) throw new KeyFileError('malformed JSON: data after the top-level object');
  return doc;
}

/** goEqualFold is Go's strings.EqualFold against an ASCII name: ASCII case, and the Kelvin sign and long s, which fold to k and s. */
function goEqualFold(name: string, ascii: string): boolean {
  const runes = [...name];
  if (runes.length !== ascii.length) return false;
  return runes.every((r, j) => {
    const f = r === '\u212A' ? 'k' : r === '\u017F' ? 's' : r >= 'A' && r <= 'Z' ? r.toLowerCase() : r;
    return f === ascii[j].toLowerCase();
  });
}

/** goToLower is Go's strings.ToLower: one code point to one (JavaScript maps U+0130 to two). */
function goToLower(s: string): string {
  return [...s]
    .map((r) => {
      if (r === '\u0130') return 'i';
      const l = r.toLowerCase();
      return [...l].length === 1 ? l : r;
    })
    .join('');
}

const GO_PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** goQuote is Go's strconv.Quote (%q), so both parsers' messages quote a name alike. */
function goQuote(s: string): string {
  const esc: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' };
  let out = '"';
  for (const r of s) {
    const cp = r.codePointAt(0)!;
    if (esc[r]) out += esc[r];
    else if (GO_PRINTABLE.test(r)) out += r;
    else if (cp < 0x80) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return out + '"';
}

function validKeyId(id: string): string | undefined {
  if (id === '') return 'empty id';
  const n = Buffer.byteLength(id, 'utf8');
  if (n > MAX_KEY_ID_LEN) return `id is ${n} bytes, at most ${MAX_KEY_ID_LEN} allowed`;
  // Do not quote the id: a bad id may be key material in the wrong field.
  if (!/^[A-Za-z0-9._-]+$/.test(id)) return "id has characters other than letters, digits, '-', '_' and '.'";
  return undefined;
}

const TIME_FIELDS = ['created', 'promoted', 'retired'];
const RFC3339 = /^"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?(?:Z|[+-]([0-9]{2}):([0-9]{2}))"$/;

/**
 * validRFC3339 reports whether raw is the JSON text, without escapes, of an RFC 3339 date-time:
 * YYYY-MM-DDTHH:MM:SS, at most 9 fraction digits, then Z or ±HH:MM; an existing day, hours below
 * 24, no leap second (the Go parser's validRFC3339).
 */
function validRFC3339(raw: string): boolean {
  const m = RFC3339.exec(raw);
  if (!m) return false;
  const [year, month, day, hour, minute, sec, oh, om] = m.slice(1).map((v) => (v === undefined ? 0 : Number(v)));
  const days = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeap(year) ? 1 : 0);
  return month >= 1 && month <= 12 && day >= 1 && day <= days && hour <= 23 && minute <= 59 && sec <= 59 && oh <= 23 && om <= 59;
}

function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function field(o: Node | undefined, name: string): Node | undefined {
  return o?.t === 'object' ? o.fields.find(([n]) => n === name)?.[1] : undefined;
}

/** checkTimes refuses a key's time that is not a strict RFC 3339 time; null is an absent time (Go's checkTimes). */
function checkTimes(doc: Node): void {
  const keys = field(doc, 'keys');
  if (keys?.t !== 'array') return;
  keys.items.forEach((k, i) => {
    for (const name of TIME_FIELDS) {
      const v = field(k, name);
      if (v === undefined || v.t === 'null' || (v.t === 'string' && validRFC3339(v.raw))) continue;
      // Do not quote the value: it may be key material in the wrong field.
      throw new KeyFileError(`key ${i}: ${goQuote(name)} is not an RFC 3339 time such as "2026-11-23T10:00:00Z"`);
    }
  });
}

interface KeyJSON {
  id: string;
  created: string;
  key: string;
  legacy: boolean;
  promoted?: string;
  retired?: string;
}

/**
 * decode reads the document into the key file's fields as Go's encoding/json decoder does with
 * DisallowUnknownFields: null leaves a field at its zero value, the first wrong type or unknown
 * field in document order is the error, a version is an int64 written as an integer ("2.0" is
 * the wrong type).
 */
function decode(doc: Node): { version: bigint; active: string; keys: KeyJSON[] } {
  let saved: string | undefined;
  const save = (reason: string) => (saved ??= reason);
  const wrongType = (path: string) => save(`field ${JSON.stringify(path)} has the wrong type`);
  const unknown = (name: string) => {
    const q = goQuote(name);
    // Quote a short name (a typo); a long one may be a pasted key.
    save(
      Buffer.byteLength(q) > 22
        ? `unknown field (a ${Buffer.byteLength(q) - 2}-byte name, not quoted: it may be key material); fields are ${CANONICAL_FIELD_NAMES.join(', ')}`
        : `unknown field ${q}`,
    );
  };
  const str = (v: Node, path: string): string | undefined => {
    if (v.t === 'string') return v.value;
    if (v.t !== 'null') wrongType(path);
    return undefined;
  };
  const f = { version: 0n, active: '', keys: [] as KeyJSON[] };
  if (doc.t !== 'object') {
    if (doc.t !== 'null') wrongType('');
  } else {
    for (const [name, v] of doc.fields) {
      if (name === 'version') {
        if (v.t === 'number' && /^-?(0|[1-9][0-9]*)$/.test(v.raw) && BigInt.asIntN(64, BigInt(v.raw)) === BigInt(v.raw)) f.version = BigInt(v.raw);
        else if (v.t !== 'null') wrongType('version');
      } else if (name === 'active') {
        f.active = str(v, 'active') ?? f.active;
      } else if (name === 'keys') {
        if (v.t === 'null') f.keys = [];
        else if (v.t !== 'array') wrongType('keys');
        else f.keys = v.items.map((item) => decodeKey(item));
      } else unknown(name);
    }
  }
  function decodeKey(item: Node): KeyJSON {
    const k: KeyJSON = { id: '', created: '0001-01-01T00:00:00Z', key: '', legacy: false };
    if (item.t !== 'object') {
      if (item.t !== 'null') wrongType('keys');
      return k;
    }
    for (const [name, v] of item.fields) {
      switch (name) {
        case 'id':
        case 'key':
          k[name] = str(v, `keys.${name}`) ?? k[name];
          break;
        case 'created':
        case 'promoted':
        case 'retired': // checked by checkTimes
          if (v.t === 'string') k[name] = v.value;
          else if (name !== 'created') delete k[name];
          break;
        case 'legacy':
          if (v.t === 'bool') k.legacy = v.value;
          else if (v.t !== 'null') wrongType('keys.legacy');
          break;
        default:
          unknown(name);
      }
    }
    return k;
  }
  if (saved !== undefined) throw new KeyFileError(`malformed JSON: ${saved}`);
  return f;
}

/** parseKeyFile parses and validates a key file, with the Go parser's rules in its order. Errors never contain key material. */
export function parseKeyFile(data: Uint8Array): KeySet {
  if (data.length > MAX_FILE_SIZE) throw new KeyFileError(`file is ${data.length} bytes, more than the ${MAX_FILE_SIZE} allowed`);
  // Invalid UTF-8 becomes U+FFFD, as in Go's decoder.
  const doc = parseJSON(Buffer.from(data).toString('utf8'));
  checkTimes(doc);
  const { version, active, keys } = decode(doc);
  if (version !== 1n && version !== BigInt(FILE_FORMAT_VERSION)) throw new KeyFileError(`unsupported version ${version}, want 1 or ${FILE_FORMAT_VERSION}`);
  if (keys.length === 0) throw new KeyFileError('no keys');

  const ks: KeySet = { active: '', keys: new Map(), legacy: new Map(), retired: new Set(), infos: [], digest: '' };
  const seen = new Set<string>();
  keys.forEach(({ id, created, key: material, legacy, promoted, retired }, i) => {
    const bad = legacy && id === '' ? undefined : validKeyId(id);
    if (bad) throw new KeyFileError(`key ${i}: ${bad}`);
    if (seen.has(id)) throw new KeyFileError(`key ${i}: duplicate id ${goQuote(id)}`);
    seen.add(id);
    if (version < 2n && (promoted !== undefined || retired !== undefined)) {
      throw new KeyFileError(`key ${goQuote(id)}: "promoted" and "retired" need version 2`);
    }
    // Go's base64 decoder skips \r and \n anywhere; otherwise standard base64 with padding.
    const b64 = material.replace(/[\r\n]/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw new KeyFileError(`key ${goQuote(id)}: key is not valid base64`);
    }
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length !== DATA_KEY_SIZE) throw new KeyFileError(`key ${goQuote(id)}: key is ${bytes.length} bytes, want ${DATA_KEY_SIZE}`);
    const fullId = legacy ? id : FILE_KEY_ID_PREFIX + id;
    const info: KeyInfo = { id, created, active: !legacy && id === active, legacy };
    if (promoted !== undefined) info.promoted = promoted;
    else if (version < 2n && !legacy) info.promoted = created; // version 1 made every new key active
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
    if (ks.legacy.has(active)) throw new KeyFileError(`active key id ${goQuote(active)} is a legacy key, which only decodes`);
    if (ks.retired.has(FILE_KEY_ID_PREFIX + active)) throw new KeyFileError(`active key id ${goQuote(active)} is retired`);
    throw new KeyFileError(`active key id ${goQuote(active)} is not among the keys`);
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
