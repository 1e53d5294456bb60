// seal and open payloads from the command line, for the cross-language tests: Go hands payloads
// to this program and reads what it prints.
//
//   node dist/e2e/seal.js seal|open --namespace NS [--compress]   < payloads.json > payloads.json
//
// Payloads are JSON: [{"metadata": {"k": "<base64>"}, "data": "<base64>"}]. The keyring comes from
// the environment (e2e/keyring.ts). On failure it prints {"error": "<class>", "message": "..."} and
// exits 1.

import { readFileSync } from 'node:fs';
import type { Payload } from '@temporalio/common';
import { EnvelopeCodec, EnvelopeError } from '../src';
import { keyringFromEnv } from './keyring';

interface JSONPayload {
  metadata: Record<string, string>;
  data: string;
}

function fromJSON(p: JSONPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJSON(p: Payload): JSONPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  let namespace = 'default';
  let compress = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--namespace') namespace = args[++i];
    else if (args[i] === '--compress') compress = true;
    else throw new Error(`unknown argument ${args[i]}`);
  }
  const keyring = await keyringFromEnv();
  const codec = new EnvelopeCodec(keyring, { namespace, compress });
  const input = (JSON.parse(readFileSync(0, 'utf8')) as JSONPayload[]).map(fromJSON);
  try {
    let out: Payload[];
    if (mode === 'seal') out = await codec.encode(input);
    else if (mode === 'open') out = await codec.decode(input);
    else throw new Error(`unknown mode ${mode}: want seal or open`);
    process.stdout.write(JSON.stringify(out.map(toJSON)) + '\n');
  } catch (e) {
    const cls = e instanceof EnvelopeError ? e.constructor.name : 'Error';
    process.stdout.write(JSON.stringify({ error: cls, message: (e as Error).message }) + '\n');
    process.exitCode = 1;
  } finally {
    keyring.close?.();
  }
}

main().catch((err) => {
  console.error('seal:', err);
  process.exit(2);
});
