// VaultTransitKeyring against a small in-process HTTP server that answers like Vault transit
// (a unit test: the real Vault runs in e2e/typescript_test.go). It counts requests, so the
// tests can check batching, retries and the AppRole login.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { EnvelopeCodec, PermissionError, UnavailableError, UnknownKeyError, VaultTransitKeyring, parseKeyId } from '../src';
import { jsonPayload } from './helpers';

interface FakeVault {
  url: string;
  requests: { method: string; path: string; token?: string; body: any }[];
  failNext: number[]; // statuses to answer before the real answer
  version: number;
  close(): Promise<void>;
}

/** fakeVault answers transit datakey/decrypt/keys and AppRole login; the "wrapped" key is the key itself, in base64, behind vault:vN:. */
async function fakeVault(validTokens = new Set(['root'])): Promise<FakeVault> {
  const fv: FakeVault = { url: '', requests: [], failNext: [], version: 1, close: async () => {} };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const body = text ? JSON.parse(text) : undefined;
    const path = req.url!.replace(/^\/v1\//, '');
    fv.requests.push({ method: req.method!, path, token: req.headers['x-vault-token'] as string | undefined, body });
    const reply = (status: number, data: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(data));
    };
    const fail = fv.failNext.shift();
    if (fail) return reply(fail, { errors: ['injected failure'] });
    if (path === 'auth/approle/login') {
      if (body.role_id !== 'role' || body.secret_id !== 'secret') return reply(400, { errors: ['invalid role or secret ID'] });
      const token = 'approle-' + randomBytes(4).toString('hex');
      validTokens.add(token);
      return reply(200, { auth: { client_token: token } });
    }
    if (!validTokens.has(req.headers['x-vault-token'] as string)) return reply(403, { errors: ['permission denied', 'invalid token'] });
    let m: RegExpExecArray | null;
    if ((m = /^transit\/datakey\/plaintext\/([^/]+)$/.exec(path))) {
      const dek = randomBytes(32);
      return reply(200, { data: { plaintext: dek.toString('base64'), ciphertext: `vault:v${fv.version}:${dek.toString('base64')}` } });
    }
    if ((m = /^transit\/decrypt\/([^/]+)$/.exec(path))) {
      const results = body.batch_input.map((it: { ciphertext: string }) => {
        const c = /^vault:v\d+:(.*)$/.exec(it.ciphertext);
        return c ? { plaintext: c[1] } : { error: 'invalid ciphertext' };
      });
      return reply(results.some((r: any) => r.error) ? 400 : 200, { data: { batch_results: results } });
    }
    if ((m = /^transit\/keys\/([^/]+)$/.exec(path))) return reply(200, { data: { latest_version: fv.version } });
    return reply(404, { errors: [] });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fv.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fv.close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections(); // keep-alive sockets of fetch would hold close() open
    });
  return fv;
}

test('key IDs parse exactly as in Go', () => {
  assert.deepEqual(parseKeyId('vault/transit/temporal/v3'), { mount: 'transit', key: 'temporal', version: 3 });
  assert.deepEqual(parseKeyId('vault/a/b/temporal/v12'), { mount: 'a/b', key: 'temporal', version: 12 });
  for (const bad of ['local/x', 'vault/transit/temporal', 'vault/transit/temporal/v0', 'vault/transit/temporal/v01', 'vault/temporal/v1', 'vault/tr ansit/k/v1', 'vault/transit/../v1']) {
    assert.equal(typeof parseKeyId(bad), 'string', bad);
  }
});

test('seal and open through transit with a token: one decrypt call per transit key, every wrapped key in one batch', async (t) => {
  const fv = await fakeVault();
  t.after(() => fv.close());
  const kr = await VaultTransitKeyring.create({ address: fv.url, keyName: 'temporal', token: 'root', keyPollIntervalMs: -1 });
  const sealed = await new EnvelopeCodec(kr, { dataKeyMaxUses: 1 }).encode([jsonPayload('1'), jsonPayload('2'), jsonPayload('3')]);
  assert.equal(Buffer.from(sealed[0].metadata!['encryption-key-id']).toString(), 'vault/transit/temporal/v1');
  fv.requests.length = 0;
  const out = await new EnvelopeCodec(kr).decode(sealed);
  assert.deepEqual(out.map((p) => Buffer.from(p.data!).toString()), ['1', '2', '3']);
  assert.equal(fv.requests.length, 1);
  assert.equal(fv.requests[0].path, 'transit/decrypt/temporal');
  assert.equal(fv.requests[0].body.batch_input.length, 3);
  kr.close();
});

test('the {namespace} template: each namespace its key, and another namespace\'s key is refused before Vault', async (t) => {
  const fv = await fakeVault();
  t.after(() => fv.close());
  const kr = await VaultTransitKeyring.create({ address: fv.url, keyName: 'temporal-{namespace}', token: 'root', keyPollIntervalMs: -1 });
  const [sealed] = await new EnvelopeCodec(kr, { namespace: 'payments' }).encode([jsonPayload('1')]);
  assert.equal(Buffer.from(sealed.metadata!['encryption-key-id']).toString(), 'vault/transit/temporal-payments/v1');
  // An alias lets "sandbox" admit the payload; the keyring still unwraps it for payments' key.
  const aliased = new EnvelopeCodec(kr, { namespace: 'sandbox', namespaceAliases: { sandbox: ['payments'] } });
  assert.equal(Buffer.from((await aliased.decode([sealed]))[0].data!).toString(), '1');
  fv.requests.length = 0;
  await assert.rejects(kr.unwrapDataKeys('sandbox', [{ keyId: 'vault/transit/temporal-payments/v1', wrapped: Buffer.from('vault:v1:AAAA') }]), PermissionError);
  await assert.rejects(kr.unwrapDataKeys('payments', [{ keyId: 'vault/other/temporal-payments/v1', wrapped: Buffer.from('vault:v1:AAAA') }]), UnknownKeyError);
  assert.equal(fv.requests.length, 0);
  kr.close();
});

test('AppRole: logs in, and logs in again when Vault says the token is invalid', async (t) => {
  const tokens = new Set<string>();
  const fv = await fakeVault(tokens);
  t.after(() => fv.close());
  const kr = await VaultTransitKeyring.create({ address: fv.url, keyName: 'temporal', appRole: { roleId: 'role', secretId: 'secret' }, keyPollIntervalMs: -1 });
  await kr.newDataKey('default');
  tokens.clear(); // the token expired
  await kr.newDataKey('default');
  assert.equal(fv.requests.filter((r) => r.path === 'auth/approle/login').length, 2);
  await assert.rejects(
    VaultTransitKeyring.create({ address: fv.url, keyName: 'temporal', appRole: { roleId: 'role', secretId: 'wrong' } }),
    (e: Error) => /approle login/.test(e.message) && !e.message.includes('wrong'),
  );
  kr.close();
});

test('errors: retries on 503 then succeeds, gives up as unavailable, a 403 is a permission error', async (t) => {
  const fv = await fakeVault();
  t.after(() => fv.close());
  const kr = await VaultTransitKeyring.create({ address: fv.url, keyName: 'temporal', token: 'root', retryWaitMs: 1, keyPollIntervalMs: -1 });
  fv.failNext.push(503, 503);
  await kr.newDataKey('default');
  fv.failNext.push(503, 503, 503);
  await assert.rejects(kr.newDataKey('default'), UnavailableError);
  const bad = await VaultTransitKeyring.create({ address: fv.url, keyName: 'temporal', token: 'nope', keyPollIntervalMs: -1 });
  await assert.rejects(bad.newDataKey('default'), (e: Error) => e instanceof PermissionError && !e.message.includes('nope'));
  const down = await VaultTransitKeyring.create({ address: 'http://127.0.0.1:1', keyName: 'temporal', token: 'root', maxRetries: 0, keyPollIntervalMs: -1 });
  await assert.rejects(down.newDataKey('default'), UnavailableError);
  kr.close();
});

test('a new key version found by the poller stops the cached data key', async (t) => {
  const fv = await fakeVault();
  t.after(() => fv.close());
  const kr = await VaultTransitKeyring.create({ address: fv.url, keyName: 'temporal', token: 'root', keyPollIntervalMs: 20 });
  t.after(() => kr.close());
  const codec = new EnvelopeCodec(kr);
  const [a] = await codec.encode([jsonPayload('1')]);
  fv.version = 2;
  const deadline = Date.now() + 5000;
  while (kr.keyGeneration() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const [b] = await codec.encode([jsonPayload('2')]);
  assert.equal(Buffer.from(a.metadata!['encryption-key-id']).toString(), 'vault/transit/temporal/v1');
  assert.equal(Buffer.from(b.metadata!['encryption-key-id']).toString(), 'vault/transit/temporal/v2');
});
