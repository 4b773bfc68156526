#!/usr/bin/env node
// Runs every compiled test file with Node's own test runner. Node 20 cannot expand globs
// itself, so this finds them: packages/*/dist/**/*.test.js and test/dist/**/*.test.js.
// Arguments filter by path substring: `npm test -- enrollment` runs only matching files.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const roots = [
  ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'dist')),
  join(root, 'test', 'dist'),
];

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (entry.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = roots
  .flatMap((dir) => walk(dir, []))
  .filter((file) => filters.length === 0 || filters.some((f) => relative(root, file).includes(f)))
  .sort();
if (files.length === 0) {
  console.error('no test files found; did the build run (npx tsc -b)?');
  process.exit(1);
}
if (!process.env.MUSTER_TEST_PG_URL) {
  console.error('note: MUSTER_TEST_PG_URL is not set, so the PostgreSQL half of the store tests is left out');
}
const child = spawn(
  process.execPath,
  [
    '--enable-source-maps',
    '--test',
    '--test-reporter=spec',
    '--test-concurrency=2',
    '--test-timeout=180000',
    ...files,
  ],
  { stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
