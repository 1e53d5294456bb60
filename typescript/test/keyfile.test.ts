// The key file: the cases both parsers share (keyring/testdata/keyfile-cases.json), the file's
// mode, retired and legacy keys.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { chmodSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { EnvelopeCodec, FileKeyring, UnknownKeyError } from '../src';
import { jsonPayload, keyFile, repoRoot } from './helpers';

interface Cases {
  cases: { name: string; file: string; error: string | null }[];
}

test('the key file cases shared with the Go parser: accepted and refused alike, with the same reason', async (t) => {
  const doc = JSON.parse(readFileSync(path.join(repoRoot, 'keyring', 'testdata', 'keyfile-cases.json'), 'utf8')) as Cases;
  assert.ok(doc.cases.length >= 10);
  for (const c of doc.cases) {
    await t.test(c.name, () => {
      let err: Error | undefined;
      try {
        FileKeyring.fromBytes(Buffer.from(c.file));
      } catch (e) {
        err = e as Error;
      }
      if (c.error === null) assert.equal(err, undefined, `refused: ${err?.message}`);
      else {
        assert.ok(err, `accepted, want a refusal with ${JSON.stringify(c.error)}`);
        assert.ok(err.message.includes(c.error), `refused with ${JSON.stringify(err.message)}, want ${JSON.stringify(c.error)} in it`);
      }
    });
  }
});

test('a key file that group or others can write is refused', async () => {
  const p = keyFile();
  chmodSync(p, 0o620);
  await assert.rejects(FileKeyring.open(p), /lets group or others write it/);
  chmodSync(p, 0o640);
  await FileKeyring.open(p);
});

test('errors never quote key material', () => {
  const key = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
  for (const file of [
    `{"version":2,"active":"a","keys":[{"id":"${key}","created":"2026-11-23T00:00:00Z","key":"${key}"}]}`,
    `{"version":2,"active":"a","keys":[{"id":"a","created":"2026-11-23T00:00:00Z","key":"${key}","${key}":1}]}`,
  ]) {
    assert.throws(
      () => FileKeyring.fromBytes(Buffer.from(file)),
      (e: Error) => !e.message.includes(key.slice(0, 20)),
    );
  }
});

test('payloads sealed under a key that is retired since fail as an unknown key', async () => {
  const p = keyFile([{ id: 'k2', created: '2026-11-24T00:00:00Z', key: Buffer.alloc(32, 9).toString('base64'), promoted: '2026-11-24T00:00:00Z' }]);
  const kr = await FileKeyring.open(p);
  const [sealed] = await new EnvelopeCodec(kr).encode([jsonPayload('1')]);
  const f = JSON.parse(readFileSync(p, 'utf8'));
  f.active = 'k2';
  f.keys[0].retired = '2026-11-25T00:00:00Z';
  const retired = FileKeyring.fromBytes(Buffer.from(JSON.stringify(f)));
  await assert.rejects(new EnvelopeCodec(retired).decode([sealed]), (e: unknown) => e instanceof UnknownKeyError && /is retired/.test((e as Error).message));
  assert.deepEqual(
    retired.keys().map((k) => [k.id, k.active, k.retired !== undefined]),
    [
      ['k1', false, true],
      ['k2', true, false],
    ],
  );
});
