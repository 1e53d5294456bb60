import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Payload } from '@temporalio/common';

/** The repository's root: this file runs from typescript/dist/test. */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');

/** testdata returns a path in codec/testdata, the vectors Go and TypeScript share. */
export function testdata(name: string): string {
  return path.join(repoRoot, 'codec', 'testdata', name);
}

export function readVector<T>(name: string): T {
  return JSON.parse(readFileSync(testdata(name), 'utf8')) as T;
}

export function unhex(s: string): Buffer {
  return Buffer.from(s, 'hex');
}

export function payloadFromHex(md: Record<string, string>, data: string): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(md)) metadata[k] = unhex(v);
  return { metadata, data: unhex(data) };
}

export function jsonPayload(s: string): Payload {
  return { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(s) };
}

/** keyFile writes a fresh version 2 key file with one active key (mode 0600) and returns its path. */
export function keyFile(extraKeys: object[] = [], active = 'k1'): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'envelope-ts-'));
  const p = path.join(dir, 'keys.json');
  const keys = [{ id: 'k1', created: '2026-11-23T00:00:00Z', key: randomBytes(32).toString('base64'), promoted: '2026-11-23T00:00:00Z' }, ...extraKeys];
  writeFileSync(p, JSON.stringify({ version: 2, active, keys }), { mode: 0o600 });
  return p;
}
