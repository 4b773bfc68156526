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
// The README walkthrough installs a fresh clone (npm ci, which compiles SQLite on Node 20 when
// no prebuilt binary can be fetched): it runs on its own afterwards, with a limit to match.
// MUSTER_TEST_INSTALLS=0 leaves it out, saying so: .ci/run installs a fresh clone once per run
// (on Node 20, the path that compiles SQLite), not again for the Node 24 pass.
const INSTALLS = ['readme-walkthrough.test.js'];
const isInstall = (f) => INSTALLS.some((name) => f.endsWith(name));
const withInstalls = process.env.MUSTER_TEST_INSTALLS !== '0';
if (!withInstalls && files.some(isInstall)) {
  console.error(
    'note: MUSTER_TEST_INSTALLS=0, so the fresh-clone README walkthrough is left out of this run',
  );
}
const runs = [
  { files: files.filter((f) => !isInstall(f)), timeoutMs: 300_000 },
  { files: withInstalls ? files.filter(isInstall) : [], timeoutMs: 1_500_000 },
].filter((run) => run.files.length > 0);

function run({ files, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--enable-source-maps',
        '--test',
        '--test-reporter=spec',
        '--test-concurrency=2',
        `--test-timeout=${timeoutMs}`,
        ...files,
      ],
      { stdio: 'inherit' },
    );
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

let failed = 0;
for (const each of runs) failed = (await run(each)) || failed;
process.exit(failed);
