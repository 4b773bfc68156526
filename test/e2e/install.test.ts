import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../support/processes.js';

// What the README promises after `npm install`: `npx muster …` runs the built CLI. npm links the
// command at install time, before the build, so the link must point at a file that is already there.
test('npm install links the muster command, and it runs', () => {
  const bin = join(REPO_ROOT, 'node_modules', '.bin', 'muster');
  const run = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  assert.equal(run.status, 0, `${bin} --version: ${run.stderr || run.error}`);
  assert.match(run.stdout, /^\d+\.\d+\.\d+\n$/);
});
