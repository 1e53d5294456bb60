// parse key files with this package's parser, for the Go test that compares both parsers
// (e2e/typescript_keyfile_test.go):
//
//   node dist/e2e/keyfile.js < files.json > results.json
//
// files.json is a JSON array of key files, each base64; results.json the same number of strings:
// "" for a file the parser accepts, else its error message.

import { readFileSync } from 'node:fs';
import { parseKeyFile } from '../src/keyfile';

const files = JSON.parse(readFileSync(0, 'utf8')) as string[];
const results = files.map((b64) => {
  try {
    parseKeyFile(Buffer.from(b64, 'base64'));
    return '';
  } catch (e) {
    return (e as Error).message;
  }
});
process.stdout.write(JSON.stringify(results));
