// EnvelopeCodec's behaviour with the key file keyring: namespaces, data-key reuse and its
// bounds, one unwrap per distinct wrapped key, pass-through and the decode policies.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, type KeyObject } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import type { Payload } from '@temporalio/common';
import {
  EnvelopeCodec,
  ErasedError,
  FileKeyring,
  MalformedError,
  NamespaceError,
  NotEncryptedError,
  SubjectKeyNotSupportedError,
  UnknownKeyError,
  type DataKey,
  type Keyring,
  type WrappedKey,
} from '../src';
import { marshalPayload } from '../src/format';
import { jsonPayload, keyFile } from './helpers';

/** counting wraps a keyring and counts its calls. */
function counting(kr: Keyring) {
  const calls = { newDataKey: 0, unwrap: 0, unwrapped: [] as number[] };
  const wrapped: Keyring = {
    newDataKey: (ns: string): Promise<DataKey> => {
      calls.newDataKey++;
      return kr.newDataKey(ns);
    },
    unwrapDataKeys: (ns: string, keys: WrappedKey[]): Promise<KeyObject[]> => {
      calls.unwrap++;
      calls.unwrapped.push(keys.length);
      return kr.unwrapDataKeys(ns, keys);
    },
    keyGeneration: () => kr.keyGeneration?.() ?? 0,
  };
  return { kr: wrapped, calls };
}

const text = (p: Payload) => Buffer.from(p.data!).toString();
const md = (p: Payload, k: string) => Buffer.from(p.metadata![k]).toString();

test('encode seals for the context namespace, decode opens it there and refuses it elsewhere', async () => {
  const kr = await FileKeyring.open(keyFile());
  const codec = new EnvelopeCodec(kr, { namespace: 'default' });
  const [sealed] = await codec.encode([jsonPayload('"secret"')], { type: 'workflow', namespace: 'payments', workflowId: 'w' });
  assert.equal(md(sealed, 'encryption-namespace'), 'payments');
  assert.equal(md(sealed, 'encryption-format'), 'envelope/v2');
  assert.match(md(sealed, 'encryption-key-id'), /^local\/k1$/);
  assert.ok(!Buffer.from(sealed.data!).includes('secret'));
  const [opened] = await codec.decode([sealed], { type: 'activity', namespace: 'payments', isLocal: false });
  assert.equal(text(opened), '"secret"');
  await assert.rejects(codec.decode([sealed]), (e: unknown) => e instanceof NamespaceError && e.sealed === 'payments' && e.decoding === 'default');
  // An alias opens it, one way.
  const aliased = new EnvelopeCodec(kr, { namespace: 'payments.acct', namespaceAliases: { 'payments.acct': ['payments'] } });
  assert.equal(text((await aliased.decode([sealed]))[0]), '"secret"');
});

test('a data key seals at most dataKeyMaxUses payloads, and decode unwraps each distinct wrapped key once', async () => {
  const path = keyFile();
  const enc = counting(await FileKeyring.open(path));
  const codec = new EnvelopeCodec(enc.kr, { dataKeyMaxUses: 3 });
  const sealed = await codec.encode(Array.from({ length: 10 }, (_, i) => jsonPayload(`"p${i}"`)));
  assert.equal(enc.calls.newDataKey, 4);
  const wrapped = new Set(sealed.map((p) => md(p, 'encryption-wrapped-key')));
  assert.equal(wrapped.size, 4);

  const dec = counting(await FileKeyring.open(path));
  const reader = new EnvelopeCodec(dec.kr);
  const out = await reader.decode(sealed);
  assert.deepEqual(out.map(text), Array.from({ length: 10 }, (_, i) => `"p${i}"`));
  assert.equal(dec.calls.unwrap, 1);
  assert.deepEqual(dec.calls.unwrapped, [4]);
  await reader.decode(sealed); // all cached
  assert.equal(dec.calls.unwrap, 1);
});

test('a data key seals for at most dataKeyMaxAgeMs, and the decode cache forgets keys after decodeCacheMaxAgeMs', async () => {
  let now = 1_000_000;
  const path = keyFile();
  const enc = counting(await FileKeyring.open(path));
  const codec = new EnvelopeCodec(enc.kr, { dataKeyMaxAgeMs: 1000, decodeCacheMaxAgeMs: 500, now: () => now });
  const [a] = await codec.encode([jsonPayload('1')]);
  now += 999;
  const [b] = await codec.encode([jsonPayload('2')]);
  now += 1;
  const [c] = await codec.encode([jsonPayload('3')]);
  assert.equal(enc.calls.newDataKey, 2);
  assert.equal(md(a, 'encryption-wrapped-key'), md(b, 'encryption-wrapped-key'));
  assert.notEqual(md(b, 'encryption-wrapped-key'), md(c, 'encryption-wrapped-key'));

  const dec = counting(await FileKeyring.open(path));
  const reader = new EnvelopeCodec(dec.kr, { decodeCacheMaxAgeMs: 500, now: () => now });
  await reader.decode([a]);
  now += 499;
  await reader.decode([a]);
  assert.equal(dec.calls.unwrap, 1);
  now += 1;
  await reader.decode([a]);
  assert.equal(dec.calls.unwrap, 2);
});

test('a rotated key file stops the cached data key at once: new payloads use the new key', async () => {
  const path = keyFile();
  const kr = await FileKeyring.open(path);
  const codec = new EnvelopeCodec(kr);
  const [before] = await codec.encode([jsonPayload('1')]);
  const f = JSON.parse(readFileSync(path, 'utf8'));
  f.keys.push({ id: 'k2', created: '2026-11-24T00:00:00Z', key: randomBytes(32).toString('base64'), promoted: '2026-11-24T00:00:00Z' });
  f.active = 'k2';
  writeFileSync(path, JSON.stringify(f));
  assert.equal(await kr.reload(), true);
  assert.equal(await kr.reload(), false);
  const [after] = await codec.encode([jsonPayload('2')]);
  assert.equal(md(before, 'encryption-key-id'), 'local/k1');
  assert.equal(md(after, 'encryption-key-id'), 'local/k2');
  assert.deepEqual((await codec.decode([before, after])).map(text), ['1', '2']);
});

test('watch picks up a rotated key file by itself, and keeps the keys when the file turns bad', async () => {
  const path = keyFile();
  const kr = await FileKeyring.open(path);
  const errors: Error[] = [];
  const stop = kr.watch(10, (e) => errors.push(e));
  try {
    const f = JSON.parse(readFileSync(path, 'utf8'));
    f.keys.push({ id: 'k2', created: '2026-11-24T00:00:00Z', key: randomBytes(32).toString('base64'), promoted: '2026-11-24T00:00:00Z' });
    f.active = 'k2';
    writeFileSync(path, JSON.stringify(f));
    const until = Date.now() + 5000;
    while (kr.keyGeneration() === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.equal((await kr.newDataKey('default')).keyId, 'local/k2');
    writeFileSync(path, '{"version": 2');
    while (errors.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.match(errors[0]?.message ?? '', /malformed JSON/);
    assert.equal((await kr.newDataKey('default')).keyId, 'local/k2');
  } finally {
    stop();
  }
});

test('the options are bounded as in Go', () => {
  const kr = FileKeyring.fromBytes(readFileSync(keyFile()));
  assert.throws(() => new EnvelopeCodec(kr, { dataKeyMaxUses: 2 ** 32 + 1 }), /at most 4294967296/);
  assert.throws(() => new EnvelopeCodec(kr, { dataKeyMaxAgeMs: 24 * 3600 * 1000 + 1 }), /at most/);
  assert.throws(() => new EnvelopeCodec(kr, { decodeCacheSize: -1 }), /want a number >= 0/);
  assert.throws(() => new EnvelopeCodec(kr, { namespace: 'x'.repeat(256) }), /at most 255/);
  assert.throws(() => new EnvelopeCodec(kr, { namespaceAliases: { a: ['a'] } }), /names the namespace itself/);
});

test('payloads that are not sealed pass through, unless encryption is required; sealed ones are never sealed twice', async () => {
  const kr = FileKeyring.fromBytes(readFileSync(keyFile()));
  const codec = new EnvelopeCodec(kr);
  const plain = jsonPayload('"x"');
  const [sealed] = await codec.encode([plain]);
  const [again] = await codec.encode([sealed]);
  assert.equal(again, sealed);
  const out = await codec.decode([plain]);
  assert.equal(out[0], plain);
  await assert.rejects(new EnvelopeCodec(kr, { requireEncryption: true }).decode([plain]), NotEncryptedError);
});

test('decode names the failing payload, and a key the file does not hold is an unknown key', async () => {
  const sealed = await new EnvelopeCodec(FileKeyring.fromBytes(readFileSync(keyFile()))).encode([jsonPayload('1')]);
  const other = new EnvelopeCodec(FileKeyring.fromBytes(readFileSync(keyFile([], 'k1'))));
  // Both files call their key k1: the wrap's AAD is the same, the key is not.
  await assert.rejects(other.decode([jsonPayload('0'), ...sealed]), /codec: decode payload 1: unwrap data key: .*cannot unwrap data key/);
  const renamed = { ...sealed[0], metadata: { ...sealed[0].metadata, 'encryption-key-id': Buffer.from('local/nope') } };
  await assert.rejects(other.decode([renamed]), UnknownKeyError);
});

test('a payload sealed under a data subject key fails as a data subject key this package does not support, not as erased, before any keyring call', async () => {
  const file = FileKeyring.fromBytes(readFileSync(keyFile()));
  const subjectId = 'subject/dir/0123456789abcdef0123456789abcdef/00112233445566aa';
  // A data key as keyring/subject hands it out: its key ID names the subject's key.
  const subjectKeyring: Keyring = {
    newDataKey: async (ns: string) => ({ ...(await file.newDataKey(ns)), keyId: subjectId }),
    unwrapDataKeys: (ns, keys) => file.unwrapDataKeys(ns, keys),
  };
  const [plain] = await new EnvelopeCodec(file).encode([jsonPayload('0')]);
  const [subject] = await new EnvelopeCodec(subjectKeyring).encode([jsonPayload('1')]);
  const { kr, calls } = counting(file);
  await assert.rejects(new EnvelopeCodec(kr).decode([plain, subject]), (e: unknown) => {
    assert.ok(e instanceof SubjectKeyNotSupportedError);
    assert.ok(e instanceof UnknownKeyError, 'the meaning of Go with a keyring without data subject keys');
    assert.ok(!(e instanceof ErasedError), 'nothing says the subject was shredded');
    assert.equal(e.reason, 'unknown_key');
    assert.match(e.message, /^codec: decode payload 1: key "subject\/dir\/0123456789abcdef0123456789abcdef\/00112233445566aa" is a data subject's key .*TypeScript workers do not support yet/);
    return true;
  });
  assert.equal(calls.unwrap, 0);
  // A malformed ID that only starts like one is cut short in the message.
  const [odd] = await new EnvelopeCodec({ ...subjectKeyring, newDataKey: async (ns: string) => ({ ...(await file.newDataKey(ns)), keyId: 'subject/' + 'x'.repeat(40) }) }).encode([jsonPayload('2')]);
  await assert.rejects(new EnvelopeCodec(file).decode([odd]), (e: Error) => e instanceof SubjectKeyNotSupportedError && !e.message.includes('x'.repeat(20)));
});

test('decompression is bounded by maxDecompressedBytes, all payloads of a decode together', async () => {
  const kr = FileKeyring.fromBytes(readFileSync(keyFile()));
  const big = jsonPayload(`"${'a'.repeat(10_000)}"`);
  const sealed = await new EnvelopeCodec(kr, { compress: true }).encode([big, big]);
  assert.ok(sealed[0].data!.length < 1000);
  const raw = marshalPayload(big).length;
  assert.equal((await new EnvelopeCodec(kr, { maxDecompressedBytes: 2 * raw }).decode(sealed)).length, 2);
  await assert.rejects(new EnvelopeCodec(kr, { maxDecompressedBytes: 2 * raw - 1 }).decode(sealed), MalformedError);
  // A corrupt stream inside a sealed payload.
  const bad: Payload = { metadata: { encoding: Buffer.from('binary/zlib') }, data: deflateSync(Buffer.from('not a payload at all')).subarray(0, 8) };
  const [sealedBad] = await new EnvelopeCodec(kr).encode([bad]);
  await assert.rejects(new EnvelopeCodec(kr).decode([sealedBad]), MalformedError);
});
