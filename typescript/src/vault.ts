// The Vault transit keyring over HTTP: the same transit keys, key IDs
// (vault/<mount>/<key>/v<N>) and rules as the Go keyring/vault (docs/VAULT.md).

import { createSecretKey, type KeyObject } from 'node:crypto';
import { EnvelopeError, PermissionError, UnavailableError, UnknownKeyError, UnwrapError } from './errors';
import type { DataKey, Keyring, WrappedKey } from './keyring';
import { DATA_KEY_SIZE } from './format';
import { keyError } from './keyfile';

export const VAULT_KEY_ID_PREFIX = 'vault/';
export const NAMESPACE_PLACEHOLDER = '{namespace}';
const MAX_KEY_ID_LEN = 256;
const MAX_NAME_LEN = 128;
const MAX_CIPHERTEXT = 512;
const MAX_BATCH = 256;

/** Options of VaultTransitKeyring: the Go vault.Config's fields. Set exactly one of token and appRole. */
export interface VaultTransitOptions {
  /** http:// or https:// URL of Vault. */
  address: string;
  /** Transit mount path. Default "transit". */
  mount?: string;
  /** Transit key name, or a template with {namespace}, e.g. "temporal-{namespace}". */
  keyName: string;
  /** Earlier transit key names (or templates) whose payloads still decode. */
  previousKeys?: string[];
  /** A Vault token. */
  token?: string;
  /** AppRole login: role ID, secret ID and the auth mount (default "approle"). */
  appRole?: { roleId: string; secretId: string; mount?: string };
  /** Per request, in milliseconds. Default 10 s. */
  timeoutMs?: number;
  /** Retries of a request Vault could not answer (unreachable, 5xx, 429). Default 2. */
  maxRetries?: number;
  /** First wait between retries, doubling, in ms. Default 200. */
  retryWaitMs?: number;
  /** How often the latest version of the keys sealed with is read, so a rotation reaches new payloads. Default 10 s; 0 keeps the default, a negative value turns it off. */
  keyPollIntervalMs?: number;
}

/** A parsed vault/<mount>/<key>/v<N> key ID. */
export interface VaultKeyId {
  mount: string;
  key: string;
  version: number;
}

function validName(s: string): string | undefined {
  if (s === '') return 'name is empty';
  if (s.length > MAX_NAME_LEN) return `name is ${s.length} bytes, at most ${MAX_NAME_LEN} allowed`;
  if (s === '.' || s === '..') return `name ${JSON.stringify(s)} is not allowed`;
  if (!/^[A-Za-z0-9._-]+$/.test(s)) return `name ${JSON.stringify(s)} has characters other than letters, digits, '-', '_' and '.'`;
  return undefined;
}

function validMount(s: string): string | undefined {
  if (s.length > MAX_NAME_LEN) return `mount is ${s.length} bytes, at most ${MAX_NAME_LEN} allowed`;
  for (const seg of s.split('/')) {
    const bad = validName(seg);
    if (bad) return `mount ${JSON.stringify(s)}: ${bad}`;
  }
  return undefined;
}

function parseVersion(s: string): number | undefined {
  if (!/^[1-9][0-9]{0,9}$/.test(s)) return undefined;
  const v = Number(s);
  return v <= 2 ** 31 - 1 ? v : undefined;
}

/** parseKeyId parses a Vault key ID, accepting exactly what the Go ParseKeyID accepts. */
export function parseKeyId(s: string): VaultKeyId | string {
  if (Buffer.byteLength(s) > MAX_KEY_ID_LEN) return `malformed vault key id: ${Buffer.byteLength(s)} bytes, at most ${MAX_KEY_ID_LEN} allowed`;
  if (!s.startsWith(VAULT_KEY_ID_PREFIX)) return `malformed vault key id: does not start with "${VAULT_KEY_ID_PREFIX}"`;
  let rest = s.slice(VAULT_KEY_ID_PREFIX.length);
  const i = rest.lastIndexOf('/');
  if (i < 0) return 'malformed vault key id: no version';
  const vs = rest.slice(i + 1);
  const v = vs.startsWith('v') ? parseVersion(vs.slice(1)) : undefined;
  if (v === undefined) return 'malformed vault key id: version is not v<N>';
  rest = rest.slice(0, i);
  const j = rest.lastIndexOf('/');
  if (j < 0) return 'malformed vault key id: no mount';
  const id = { mount: rest.slice(0, j), key: rest.slice(j + 1), version: v };
  const badMount = validMount(id.mount);
  if (badMount) return `malformed vault key id: ${badMount}`;
  const badKey = validName(id.key);
  if (badKey) return `malformed vault key id: key ${badKey}`;
  return id;
}

/** ciphertextVersion returns N of a transit ciphertext "vault:vN:<base64>", or undefined. */
function ciphertextVersion(c: Uint8Array): number | undefined {
  if (c.length > MAX_CIPHERTEXT) return undefined;
  const m = /^vault:v([0-9]+):([A-Za-z0-9+/=]+)$/.exec(Buffer.from(c).toString('latin1'));
  if (!m || m[2].length % 4 !== 0) return undefined;
  return parseVersion(m[1]);
}

interface Reply {
  status: number;
  body: any;
}

/**
 * VaultTransitKeyring wraps data keys with Vault transit: data keys come from
 * transit/datakey/plaintext/<key>, and are unwrapped with one batched transit/decrypt call per
 * transit key. The key-encryption key never leaves Vault. Call close() to stop its key poller.
 */
export class VaultTransitKeyring implements Keyring {
  private readonly addr: string;
  private readonly mount: string;
  private readonly keyName: string;
  private readonly templated: boolean;
  private readonly previous: string[];
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryWaitMs: number;
  private token: string;
  private readonly appRole?: { roleId: string; secretId: string; mount: string };
  private readonly versions = new Map<string, number>();
  private gen = 0;
  private poller?: NodeJS.Timeout;

  private constructor(o: VaultTransitOptions) {
    let u: URL | undefined;
    try {
      u = new URL(o.address);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !u.host) {
      throw new EnvelopeError(`vault: address ${JSON.stringify(o.address)} is not an http:// or https:// URL`);
    }
    this.addr = o.address.replace(/\/+$/, '');
    this.mount = (o.mount ?? 'transit').replace(/^\/+|\/+$/g, '') || 'transit';
    const badMount = validMount(this.mount);
    if (badMount) throw new EnvelopeError(`vault: ${badMount}`);
    if (!o.keyName) throw new EnvelopeError('vault: no transit key name');
    this.keyName = o.keyName;
    this.templated = o.keyName.includes(NAMESPACE_PLACEHOLDER);
    const badKey = validName(o.keyName.split(NAMESPACE_PLACEHOLDER).join('x'));
    if (badKey) throw new EnvelopeError(`vault: key name template ${JSON.stringify(o.keyName)}: ${badKey}`);
    this.previous = [];
    for (const p of o.previousKeys ?? []) {
      const bad = validName(p.split(NAMESPACE_PLACEHOLDER).join('x'));
      if (bad) throw new EnvelopeError(`vault: previous key ${JSON.stringify(p)}: ${bad}`);
      if (p !== o.keyName) this.previous.push(p);
    }
    const methods = [o.token ? 'token' : '', o.appRole?.roleId ? 'approle' : ''].filter(Boolean);
    if (methods.length !== 1) {
      throw new EnvelopeError(`vault: set exactly one of a token or an AppRole role ID; got ${methods.length} (${methods.join(', ')})`);
    }
    this.token = o.token ?? '';
    if (o.appRole?.roleId) this.appRole = { roleId: o.appRole.roleId, secretId: o.appRole.secretId, mount: o.appRole.mount || 'approle' };
    this.timeoutMs = o.timeoutMs || 10_000;
    this.maxRetries = o.maxRetries === undefined ? 2 : Math.max(0, o.maxRetries);
    this.retryWaitMs = o.retryWaitMs || 200;
    const poll = o.keyPollIntervalMs || 10_000;
    if (poll > 0) {
      this.poller = setInterval(() => void this.poll(), poll);
      this.poller.unref();
    }
  }

  /** create validates the options and logs in (AppRole) before returning. */
  static async create(options: VaultTransitOptions): Promise<VaultTransitKeyring> {
    const k = new VaultTransitKeyring(options);
    if (k.appRole) {
      try {
        await k.login();
      } catch (e) {
        k.close();
        throw e;
      }
    }
    return k;
  }

  /** close stops the key poller. */
  close(): void {
    if (this.poller) clearInterval(this.poller);
  }

  keyGeneration(): number {
    return this.gen;
  }

  /** keyNameFor returns the transit key of namespace: the key name with {namespace} replaced ("default" if empty). */
  keyNameFor(namespace: string): string {
    if (!this.templated) return this.keyName;
    const name = this.keyName.split(NAMESPACE_PLACEHOLDER).join(namespace || 'default');
    const bad = validName(name);
    if (bad) throw new PermissionError(`vault: namespace ${JSON.stringify(namespace)} gives no valid transit key name: ${bad}: permission denied`);
    return name;
  }

  async newDataKey(namespace: string): Promise<DataKey> {
    const name = this.keyNameFor(namespace);
    const op = `datakey (key ${JSON.stringify(name)})`;
    const r = await this.call(op, 'PUT', `${this.mount}/datakey/plaintext/${name}`, { bits: DATA_KEY_SIZE * 8 });
    const d = r.body?.data ?? {};
    const ct = typeof d.ciphertext === 'string' ? d.ciphertext : '';
    const v = ciphertextVersion(Buffer.from(ct, 'latin1'));
    if (v === undefined) throw new EnvelopeError(`vault: ${op}: answer has no valid "vault:vN:" ciphertext`);
    const dek = Buffer.from(typeof d.plaintext === 'string' ? d.plaintext : '', 'base64');
    if (dek.length !== DATA_KEY_SIZE) throw new EnvelopeError(`vault: ${op}: data key is ${dek.length} bytes, want ${DATA_KEY_SIZE}`);
    this.sawVersion(name, v);
    const keyId = `${VAULT_KEY_ID_PREFIX}${this.mount}/${name}/v${v}`;
    if (typeof parseKeyId(keyId) === 'string') {
      dek.fill(0);
      throw new EnvelopeError(`vault: ${op}: the key ID of mount ${JSON.stringify(this.mount)} and key ${JSON.stringify(name)} cannot be stored`);
    }
    const key = createSecretKey(dek);
    dek.fill(0);
    return { keyId, wrapped: Buffer.from(ct, 'latin1'), key };
  }

  async unwrapDataKeys(namespace: string, keys: WrappedKey[]): Promise<KeyObject[]> {
    const out: KeyObject[] = new Array(keys.length);
    if (keys.length === 0) return out;
    const want = this.templated ? this.keyNameFor(namespace) : '';
    const allowed = this.previous
      .map((p) => p.split(NAMESPACE_PLACEHOLDER).join(namespace || 'default'))
      .filter((n) => validName(n) === undefined);
    const groups = new Map<string, number[]>();
    keys.forEach((w, i) => {
      const id = parseKeyId(w.keyId);
      if (typeof id === 'string') {
        throw keyError(new UnknownKeyError(`vault: key ${JSON.stringify(w.keyId.slice(0, 64))}: ${id}: unknown key id`), i);
      }
      if (id.mount !== this.mount) {
        throw keyError(new UnknownKeyError(`vault: key ${JSON.stringify(w.keyId)}: names transit mount ${JSON.stringify(id.mount)}, this keyring uses ${JSON.stringify(this.mount)}: unknown key id`), i);
      }
      if (!allowed.includes(id.key)) {
        if (this.templated && id.key !== want) {
          throw keyError(
            new PermissionError(
              `vault: key ${JSON.stringify(w.keyId)}: transit key ${JSON.stringify(id.key)} is not the key of namespace ${JSON.stringify(namespace || 'default')} (${JSON.stringify(want)}): permission denied`,
            ),
            i,
          );
        }
        if (!this.templated && id.key !== this.keyName) {
          throw keyError(
            new UnknownKeyError(
              `vault: key ${JSON.stringify(w.keyId)}: transit key ${JSON.stringify(id.key)} is neither the configured key ${JSON.stringify(this.keyName)} nor one of its previous keys: unknown key id`,
            ),
            i,
          );
        }
      }
      const v = ciphertextVersion(w.wrapped);
      if (v === undefined) throw keyError(new UnwrapError(`vault: key ${JSON.stringify(w.keyId)}: wrapped data key is not a transit ciphertext: cannot unwrap data key`), i);
      if (v !== id.version) {
        throw keyError(new UnwrapError(`vault: key ${JSON.stringify(w.keyId)}: wrapped data key is from key version ${v}: cannot unwrap data key`), i);
      }
      const g = groups.get(id.key);
      if (g) g.push(i);
      else groups.set(id.key, [i]);
    });
    for (const [name, idx] of groups) {
      for (let lo = 0; lo < idx.length; lo += MAX_BATCH) {
        await this.decryptBatch(name, keys, idx.slice(lo, lo + MAX_BATCH), out);
      }
    }
    return out;
  }

  private async decryptBatch(name: string, keys: WrappedKey[], idx: number[], out: KeyObject[]): Promise<void> {
    const op = `decrypt (key ${JSON.stringify(name)})`;
    let r: Reply;
    try {
      r = await this.call(op, 'PUT', `${this.mount}/decrypt/${name}`, {
        batch_input: idx.map((i) => ({ ciphertext: Buffer.from(keys[i].wrapped).toString('latin1') })),
      }, true);
    } catch (e) {
      if (e instanceof UnknownKeyError || e instanceof PermissionError || e instanceof UnavailableError) throw e;
      // Any other refusal of the whole batch (400) is about the input.
      throw keyError(new UnwrapError(`${(e as Error).message}: cannot unwrap data key`, { cause: e }), idx[0]);
    }
    const results = r.body?.data?.batch_results;
    if (!Array.isArray(results) || results.length !== idx.length) {
      throw new EnvelopeError(`vault: ${op}: malformed batch answer (${Array.isArray(results) ? results.length : 0} results for ${idx.length} items)`);
    }
    results.forEach((res: { plaintext?: string; error?: string }, j: number) => {
      const i = idx[j];
      const id = keys[i].keyId;
      if (res.error) {
        const reason = reasonText([res.error]);
        const C = /too new|disallowed by policy|too old/.test(reason) ? UnknownKeyError : UnwrapError;
        throw keyError(new C(`vault: ${op}: key ${JSON.stringify(id)}: vault refused the item: ${reason}`), i);
      }
      const dek = Buffer.from(res.plaintext ?? '', 'base64');
      if (dek.length !== DATA_KEY_SIZE) {
        throw keyError(new UnwrapError(`vault: ${op}: key ${JSON.stringify(id)}: data key is ${dek.length} bytes, want ${DATA_KEY_SIZE}: cannot unwrap data key`), i);
      }
      out[i] = createSecretKey(dek);
      dek.fill(0);
    });
  }

  private sawVersion(name: string, v: number): void {
    const old = this.versions.get(name);
    if (old !== undefined && v > old) this.gen++;
    if (old === undefined || v > old) this.versions.set(name, v);
  }

  /** poll reads the latest version of every key sealed with; a new version bumps the generation. */
  private async poll(): Promise<void> {
    for (const name of [...this.versions.keys()]) {
      try {
        const r = await this.call(`read key (key ${JSON.stringify(name)})`, 'GET', `${this.mount}/keys/${name}`, undefined, false, 0);
        const v = r.body?.data?.latest_version;
        if (typeof v === 'number') this.sawVersion(name, v);
      } catch {
        // The next poll tries again; encode and decode report their own failures.
      }
    }
  }

  private async login(): Promise<void> {
    const a = this.appRole!;
    const r = await this.request('POST', `auth/${a.mount}/login`, { role_id: a.roleId, secret_id: a.secretId }, false);
    if (r.status !== 200 || typeof r.body?.auth?.client_token !== 'string') {
      throw failure('approle login', r.status, r.body?.errors);
    }
    this.token = r.body.auth.client_token;
  }

  private async request(method: string, path: string, body: unknown, withToken = true): Promise<Reply> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (withToken) headers['X-Vault-Token'] = this.token;
    const res = await fetch(`${this.addr}/v1/${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = {};
    }
    return { status: res.status, body: parsed };
  }

  /**
   * call makes one Vault request with retries on what may pass (unreachable, 5xx, 429, 412), and
   * one new AppRole login when Vault says the token is invalid. A batch answer of 400 with
   * per-item results is returned for the caller to read.
   */
  private async call(op: string, method: string, path: string, body: unknown, allowBatch400 = false, retries = this.maxRetries): Promise<Reply> {
    let relogged = false;
    for (let attempt = 0; ; attempt++) {
      let r: Reply;
      try {
        r = await this.request(method, path, body);
      } catch (e) {
        if (attempt < retries) {
          await sleep(this.retryWaitMs * 2 ** attempt);
          continue;
        }
        const why = (e as Error).name === 'TimeoutError' ? 'timed out' : (e as Error).message;
        throw new UnavailableError(`vault: ${op}: cannot reach vault: ${why}: key service unavailable`);
      }
      if (r.status === 200 || r.status === 204) return r;
      if (allowBatch400 && r.status === 400 && Array.isArray(r.body?.data?.batch_results)) return r;
      const reason = reasonText(r.body?.errors);
      if ((r.status === 403 || r.status === 401) && this.appRole && !relogged && reason.includes('invalid token')) {
        relogged = true;
        await this.login();
        attempt--;
        continue;
      }
      const retry = r.status === 429 || r.status === 412 || r.status >= 500;
      if (retry && attempt < retries) {
        await sleep(this.retryWaitMs * 2 ** attempt);
        continue;
      }
      throw failure(op, r.status, r.body?.errors);
    }
  }

  toString(): string {
    return `VaultTransitKeyring(${this.addr}, ${this.mount}/${this.keyName})`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function reasonText(reasons: unknown): string {
  if (!Array.isArray(reasons)) return '';
  const parts: string[] = [];
  for (const r of reasons) {
    for (let line of String(r).split('\n')) {
      line = line.trim().replace(/^\*/, '').trim();
      if (line === '' || /errors? occurred:$/.test(line)) continue;
      parts.push(line);
    }
  }
  const s = parts.join('; ');
  return s.length > 200 ? s.slice(0, 200) + '...' : s;
}

/** failure maps Vault's answer to the error class of the Go keyring's classify. */
function failure(op: string, status: number, errors: unknown): EnvelopeError {
  const reason = reasonText(errors);
  const msg = `vault: ${op}: vault answered ${status}${reason ? ': ' + reason : ''}`;
  if (status === 403 || status === 401) return new PermissionError(`${msg}: permission denied`);
  if (status === 404 || (status === 400 && reason.includes('key not found'))) return new UnknownKeyError(`${msg}: unknown key id`);
  if (status === 429 || status === 412 || status >= 500) return new UnavailableError(`${msg}: key service unavailable`);
  return new EnvelopeError(msg);
}
