// The vectors of codec/testdata, which the Go tests check too: TypeScript reproduces and opens
// every one byte for byte.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createCipheriv, createSecretKey } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import type { Payload } from '@temporalio/common';
import { DecryptError, EnvelopeCodec, FileKeyring, MalformedError, NamespaceError, UnknownKeyError, UnsupportedError, UnwrapError } from '../src';
import { aadV1, aadV2, marshalPayload, sealedMetadata, sealWithNonce, unmarshalPayload } from '../src/format';
import { wrapAAD } from '../src/keyfile';
import { payloadFromHex, readVector, testdata, unhex } from './helpers';

interface Vector {
  keyring_file: string;
  namespace?: string;
  kek: string;
  key_id: string;
  dek: string;
  wrap_nonce: string;
  wrap_aad: string;
  wrapped_dek: string;
  payload_nonce: string;
  plaintext_payload: string;
  inner_payload?: string;
  aad: string;
  sealed_data: string;
  metadata?: Record<string, string>;
  metadata_hex?: Record<string, string>;
}

function keyring(file: string): FileKeyring {
  return FileKeyring.fromBytes(readFileSync(testdata(file)));
}

function hex(p: Payload): string {
  return marshalPayload(p).toString('hex');
}

function wrap(v: Vector): Buffer {
  const c = createCipheriv('aes-256-gcm', unhex(v.kek), unhex(v.wrap_nonce));
  c.setAAD(wrapAAD(v.key_id));
  const ct = c.update(unhex(v.dek));
  c.final();
  return Buffer.concat([unhex(v.wrap_nonce), ct, c.getAuthTag()]);
}

test('the v1 vector: key wrap, AAD and sealed data byte for byte, and the codec opens it', async () => {
  const v = readVector<Vector>('vector.json');
  assert.equal(wrapAAD(v.key_id).toString('hex'), v.wrap_aad);
  assert.equal(wrap(v).toString('hex'), v.wrapped_dek);
  const aad = aadV1(v.key_id, unhex(v.wrapped_dek));
  assert.equal(aad.toString('hex'), v.aad);
  const plain = unmarshalPayload(unhex(v.plaintext_payload));
  assert.equal(hex(plain), v.plaintext_payload);
  assert.equal(sealWithNonce(createSecretKey(unhex(v.dek)), aad, plain, unhex(v.payload_nonce)).toString('hex'), v.sealed_data);
  const sealed: Payload = {
    metadata: {
      encoding: Buffer.from('binary/encrypted'),
      'encryption-format': Buffer.from('envelope/v1'),
      'encryption-key-id': Buffer.from(v.key_id),
      'encryption-wrapped-key': unhex(v.wrapped_dek),
    },
    data: unhex(v.sealed_data),
  };
  const out = await new EnvelopeCodec(keyring(v.keyring_file)).decode([sealed]);
  assert.equal(hex(out[0]), v.plaintext_payload);
  // v1 is not namespace-bound: it opens anywhere, unless refused.
  const other = await new EnvelopeCodec(keyring(v.keyring_file), { namespace: 'sandbox' }).decode([sealed]);
  assert.equal(hex(other[0]), v.plaintext_payload);
  await assert.rejects(new EnvelopeCodec(keyring(v.keyring_file), { refuseV1: true }).decode([sealed]), UnsupportedError);
});

test('the v2 vector: AAD with the namespace, sealed data and every metadata entry byte for byte', async () => {
  const v = readVector<Vector>('vector-v2.json');
  const wrapped = wrap(v);
  assert.equal(wrapped.toString('hex'), v.wrapped_dek);
  const aad = aadV2(v.namespace!, v.key_id, wrapped);
  assert.equal(aad.toString('hex'), v.aad);
  const plain = unmarshalPayload(unhex(v.plaintext_payload));
  assert.equal(sealWithNonce(createSecretKey(unhex(v.dek)), aad, plain, unhex(v.payload_nonce)).toString('hex'), v.sealed_data);
  const md = sealedMetadata(v.namespace!, v.key_id, wrapped);
  assert.deepEqual(Object.fromEntries(Object.entries(md).map(([k, b]) => [k, Buffer.from(b).toString('hex')])), v.metadata_hex);

  // The codec writes exactly this metadata, but for the wrapped key (random per data key).
  const codec = new EnvelopeCodec(keyring(v.keyring_file), { namespace: v.namespace });
  const [enc] = await codec.encode([plain]);
  assert.deepEqual(Object.keys(enc.metadata!).sort(), Object.keys(v.metadata_hex!).sort());
  for (const [k, want] of Object.entries(v.metadata!)) assert.equal(Buffer.from(enc.metadata![k]).toString(), want, k);

  const out = await codec.decode([payloadFromHex(v.metadata_hex!, v.sealed_data)]);
  assert.equal(hex(out[0]), v.plaintext_payload);
  await assert.rejects(
    new EnvelopeCodec(keyring(v.keyring_file), { namespace: 'sandbox' }).decode([payloadFromHex(v.metadata_hex!, v.sealed_data)]),
    (e: unknown) => e instanceof NamespaceError && e.sealed === 'payments' && e.decoding === 'sandbox',
  );
});

test('the v2 vector tampered: one bit in every field fails with the documented error', async (t) => {
  const v = readVector<Vector>('vector-v2.json');
  const flip = (b: Uint8Array, i: number) => {
    const c = Buffer.from(b);
    c[i] ^= 1;
    return c;
  };
  const cases: { name: string; namespace?: string; mutate: (p: Payload) => void; want: Function }[] = [
    { name: 'nonce', mutate: (p) => (p.data = flip(p.data!, 3)), want: DecryptError },
    { name: 'ciphertext', mutate: (p) => (p.data = flip(p.data!, 17)), want: DecryptError },
    { name: 'tag', mutate: (p) => (p.data = flip(p.data!, p.data!.length - 2)), want: DecryptError },
    { name: 'namespace, refused before the keyring', mutate: (p) => (p.metadata!['encryption-namespace'] = flip(p.metadata!['encryption-namespace'], 0)), want: NamespaceError },
    {
      name: 'namespace, decoded in the edited namespace: the AAD binds it',
      namespace: 'qayments',
      mutate: (p) => (p.metadata!['encryption-namespace'] = flip(p.metadata!['encryption-namespace'], 0)),
      want: DecryptError,
    },
    { name: 'key id', mutate: (p) => (p.metadata!['encryption-key-id'] = flip(p.metadata!['encryption-key-id'], 8)), want: UnknownKeyError },
    { name: 'wrapped key', mutate: (p) => (p.metadata!['encryption-wrapped-key'] = flip(p.metadata!['encryption-wrapped-key'], 30)), want: UnwrapError },
    { name: 'format', mutate: (p) => (p.metadata!['encryption-format'] = flip(p.metadata!['encryption-format'], 10)), want: UnsupportedError },
    { name: 'format downgraded to v1', mutate: (p) => (p.metadata!['encryption-format'] = Buffer.from('envelope/v1')), want: MalformedError },
    {
      name: 'format downgraded to v1, namespace removed',
      mutate: (p) => {
        p.metadata!['encryption-format'] = Buffer.from('envelope/v1');
        delete p.metadata!['encryption-namespace'];
      },
      want: DecryptError,
    },
    { name: 'namespace removed', mutate: (p) => delete p.metadata!['encryption-namespace'], want: MalformedError },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const p = payloadFromHex(v.metadata_hex!, v.sealed_data);
      c.mutate(p);
      const codec = new EnvelopeCodec(keyring(v.keyring_file), { namespace: c.namespace ?? v.namespace });
      await assert.rejects(codec.decode([p]), (e: unknown) => {
        assert.ok(e instanceof c.want, `got ${e}, want ${c.want.name}`);
        assert.ok(!String((e as Error).message).includes('Lovelace'), 'error leaks plaintext');
        return true;
      });
    });
  }
});

test('the zlib vector (v1): the inner payload is the zlib form of the plaintext and the codec decompresses it', async () => {
  const v = readVector<Vector>('vector-zlib.json');
  const inner = unmarshalPayload(unhex(v.inner_payload!));
  assert.equal(Buffer.from(inner.metadata!.encoding).toString(), 'binary/zlib');
  assert.equal(inflateSync(inner.data!).toString('hex'), v.plaintext_payload);
  const aad = aadV1(v.key_id, unhex(v.wrapped_dek));
  assert.equal(sealWithNonce(createSecretKey(unhex(v.dek)), aad, inner, unhex(v.payload_nonce)).toString('hex'), v.sealed_data);
  const sealed: Payload = {
    metadata: {
      encoding: Buffer.from('binary/encrypted'),
      'encryption-format': Buffer.from('envelope/v1'),
      'encryption-key-id': Buffer.from(v.key_id),
      'encryption-wrapped-key': unhex(v.wrapped_dek),
    },
    data: unhex(v.sealed_data),
  };
  const out = await new EnvelopeCodec(keyring(v.keyring_file)).decode([sealed]);
  assert.equal(hex(out[0]), v.plaintext_payload);
});

test('the compressed v2 vector: sealed data and metadata byte for byte, opened in its namespace only', async () => {
  const v = readVector<Vector>('vector-v2-zlib.json');
  const inner = unmarshalPayload(unhex(v.inner_payload!));
  assert.equal(inflateSync(inner.data!).toString('hex'), v.plaintext_payload);
  const aad = aadV2(v.namespace!, v.key_id, unhex(v.wrapped_dek));
  assert.equal(aad.toString('hex'), v.aad);
  assert.equal(sealWithNonce(createSecretKey(unhex(v.dek)), aad, inner, unhex(v.payload_nonce)).toString('hex'), v.sealed_data);
  const codec = new EnvelopeCodec(keyring(v.keyring_file), { namespace: v.namespace });
  const out = await codec.decode([payloadFromHex(v.metadata_hex!, v.sealed_data)]);
  assert.equal(hex(out[0]), v.plaintext_payload);
  await assert.rejects(
    new EnvelopeCodec(keyring(v.keyring_file), { namespace: 'sandbox' }).decode([payloadFromHex(v.metadata_hex!, v.sealed_data)]),
    NamespaceError,
  );
  // With compress on, TypeScript seals this plaintext in the same inner form.
  const [enc] = await new EnvelopeCodec(keyring(v.keyring_file), { namespace: v.namespace, compress: true }).encode([unmarshalPayload(unhex(v.plaintext_payload))]);
  const [dec] = await codec.decode([enc]);
  assert.equal(hex(dec), v.plaintext_payload);
  assert.ok(enc.data!.length < unhex(v.plaintext_payload).length, 'compress did not compress');
});

interface LegacyVector {
  keyring_file: string;
  static_key: string;
  cases: { name: string; key_id: string; payload_nonce: string; plaintext_payload: string; sealed_plaintext: string; sealed_data: string; metadata_hex: Record<string, string> }[];
}

test('the samples static-key vectors: reproduced and opened with legacy keys, in any namespace', async (t) => {
  const v = readVector<LegacyVector>('vector-legacy.json');
  assert.equal(unhex(v.static_key).toString(), 'test-key-test-key-test-key-test!');
  for (const c of v.cases) {
    await t.test(c.name, async () => {
      const c1 = createCipheriv('aes-256-gcm', unhex(v.static_key), unhex(c.payload_nonce));
      const ct = Buffer.concat([c1.update(unhex(c.sealed_plaintext)), c1.final()]);
      assert.equal(Buffer.concat([unhex(c.payload_nonce), ct, c1.getAuthTag()]).toString('hex'), c.sealed_data);
      for (const namespace of ['default', 'payments']) {
        const out = await new EnvelopeCodec(keyring(v.keyring_file), { namespace }).decode([payloadFromHex(c.metadata_hex, c.sealed_data)]);
        assert.equal(hex(out[0]), c.plaintext_payload);
      }
      await assert.rejects(new EnvelopeCodec(keyring(v.keyring_file), { refuseLegacy: true }).decode([payloadFromHex(c.metadata_hex, c.sealed_data)]), UnsupportedError);
      // The v1 vector's key file holds no legacy key.
      await assert.rejects(new EnvelopeCodec(keyring('vector-keyring.json')).decode([payloadFromHex(c.metadata_hex, c.sealed_data)]), UnknownKeyError);
      const tampered = payloadFromHex(c.metadata_hex, c.sealed_data);
      tampered.data![20] ^= 1;
      await assert.rejects(new EnvelopeCodec(keyring(v.keyring_file)).decode([tampered]), DecryptError);
    });
  }
});
