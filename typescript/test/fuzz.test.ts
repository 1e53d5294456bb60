// Random mutations of the vectors and of a key file (a seeded generator, so a failure repeats):
// decode and the key file parser either accept the input or throw one of this package's errors,
// never anything else, and never hang.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Payload } from '@temporalio/common';
import { EnvelopeCodec, EnvelopeError, FileKeyring } from '../src';
import { payloadFromHex, readVector, testdata } from './helpers';

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 3000);

/** mulberry32: a small seeded generator. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(b: Uint8Array, r: () => number): Buffer {
  const out = Buffer.from(b);
  switch (Math.floor(r() * 4)) {
    case 0: // flip bits
      for (let n = 1 + Math.floor(r() * 3); n > 0 && out.length > 0; n--) out[Math.floor(r() * out.length)] ^= 1 << Math.floor(r() * 8);
      return out;
    case 1: // truncate
      return out.subarray(0, Math.floor(r() * out.length));
    case 2: // append
      return Buffer.concat([out, Buffer.from(Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256)))]);
    default: // set a byte
      if (out.length > 0) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
      return out;
  }
}

test('decode of mutated sealed payloads throws only EnvelopeErrors', async () => {
  const kr = FileKeyring.fromBytes(readFileSync(testdata('vector-legacy-keyring.json')));
  const seeds: Payload[] = [];
  for (const name of ['vector-v2.json', 'vector-v2-zlib.json']) {
    const v = readVector<{ metadata_hex: Record<string, string>; sealed_data: string }>(name);
    seeds.push(payloadFromHex(v.metadata_hex, v.sealed_data));
  }
  for (const c of readVector<{ cases: { metadata_hex: Record<string, string>; sealed_data: string }[] }>('vector-legacy.json').cases) {
    seeds.push(payloadFromHex(c.metadata_hex, c.sealed_data));
  }
  const r = rng(1);
  for (let i = 0; i < ITERATIONS; i++) {
    const seed = seeds[i % seeds.length];
    const p: Payload = { metadata: { ...seed.metadata }, data: seed.data };
    const keys = Object.keys(p.metadata!);
    if (r() < 0.5) p.data = mutate(p.data!, r);
    else {
      const k = keys[Math.floor(r() * keys.length)];
      if (r() < 0.1) delete p.metadata![k];
      else p.metadata![k] = mutate(p.metadata![k], r);
    }
    const codec = new EnvelopeCodec(kr, { namespace: 'payments' });
    try {
      await codec.decode([p]);
    } catch (e) {
      assert.ok(e instanceof EnvelopeError, `iteration ${i}: ${e}`);
    }
  }
});

test('the key file parser throws only EnvelopeErrors on mutated files', () => {
  const file = readFileSync(testdata('vector-legacy-keyring.json'));
  const r = rng(2);
  for (let i = 0; i < ITERATIONS; i++) {
    try {
      FileKeyring.fromBytes(mutate(file, r));
    } catch (e) {
      assert.ok(e instanceof EnvelopeError, `iteration ${i}: ${e}`);
    }
  }
});
