// Encode and decode of one payload with EnvelopeCodec against bare AES-256-GCM on Node's crypto,
// interleaved in one process, reported as ratios (BENCHMARKS.md, "TypeScript codec").
//
//   npm run bench                  # ROUNDS=30 rounds of ~0.1 s per operation
//
// "envelope" is EnvelopeCodec.encode / decode of one payload in steady state (data key cached).
// "bare" is createCipheriv('aes-256-gcm') with a fresh randomBytes nonce over the same marshalled
// payload (nonce ‖ ciphertext ‖ tag) / createDecipheriv of it: what any caller returning fresh
// bytes does. Each round measures the four operations one after the other; ratio = bare ns/op ÷
// envelope ns/op of the same round (1.00 = as fast as bare GCM; higher is better), the median
// over the rounds, with the middle half of the rounds' ratios beside it.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import type { Payload } from '@temporalio/common';
import { EnvelopeCodec, FileKeyring } from '../src';
import { marshalPayload } from '../src/format';

const ROUNDS = Number(process.env.ROUNDS ?? 30);
const ROUND_MS = Number(process.env.ROUND_MS ?? 100);

async function measure(fn: () => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < 50; i++) await fn(); // warm up
  let n = 0;
  const start = process.hrtime.bigint();
  const until = start + BigInt(ROUND_MS) * 1_000_000n;
  let now = start;
  while (now < until) {
    for (let i = 0; i < 32; i++) await fn();
    n += 32;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const keyring = FileKeyring.fromBytes(readFileSync(path.join(__dirname, '..', '..', '..', 'codec', 'testdata', 'vector-keyring.json')));
  const codec = new EnvelopeCodec(keyring);
  const key = randomBytes(32);
  const rows: string[] = [];
  console.log(`node ${process.version}, ${ROUNDS} interleaved rounds of ${ROUND_MS} ms per operation, medians; load average ${loadavg()[0].toFixed(1)}`);
  for (const size of [1024, 64 * 1024]) {
    const p: Payload = { metadata: { encoding: Buffer.from('json/plain') }, data: randomBytes(size) };
    const [sealed] = await codec.encode([p]);
    const raw = marshalPayload(p);
    const bareSeal = () => {
      const nonce = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, nonce);
      const ct = c.update(raw);
      c.final();
      return Buffer.concat([nonce, ct, c.getAuthTag()]);
    };
    const bareSealed = bareSeal();
    const bareOpen = () => {
      const d = createDecipheriv('aes-256-gcm', key, bareSealed.subarray(0, 12));
      d.setAuthTag(bareSealed.subarray(bareSealed.length - 16));
      const pt = d.update(bareSealed.subarray(12, bareSealed.length - 16));
      d.final();
      return pt;
    };
    const t = { encode: [] as number[], bareEncode: [] as number[], decode: [] as number[], bareDecode: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      t.encode.push(await measure(() => codec.encode([p])));
      t.bareEncode.push(await measure(bareSeal));
      t.decode.push(await measure(() => codec.decode([sealed])));
      t.bareDecode.push(await measure(bareOpen));
    }
    const kib = `${size / 1024} KiB`;
    for (const [op, env, bare] of [
      ['encode', t.encode, t.bareEncode],
      ['decode', t.decode, t.bareDecode],
    ] as const) {
      const ratios = env.map((e, i) => bare[i] / e).sort((a, b) => a - b);
      const q = (f: number) => ratios[Math.min(ratios.length - 1, Math.floor(f * ratios.length))].toFixed(2);
      rows.push(
        `| ${op} | ${kib} | ${Math.round(median(env)).toLocaleString('en')} | ${Math.round(median(bare)).toLocaleString('en')} | **${median(ratios).toFixed(2)}** | ${q(0.25)}–${q(0.75)} |`,
      );
    }
  }
  console.log('| operation | size | envelope ns/op | bare AES-256-GCM ns/op | ratio | middle half of the rounds |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
