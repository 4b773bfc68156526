import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataDirInUseError, LOCK_FILE, lockDataDir } from './lock.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'muster-lock-'));
  dirs.push(dir);
  return dir;
}

test('the lock holds this pid, refuses a second holder in the same process, and is gone once released', async () => {
  const dir = dataDir();
  const release = await lockDataDir(dir);
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
  await assert.rejects(
    lockDataDir(dir),
    (err: unknown) =>
      err instanceof DataDirInUseError && err.message.startsWith(`data dir in use by pid ${process.pid}:`),
  );
  await release();
  assert.equal(existsSync(join(dir, LOCK_FILE)), false);
  await (await lockDataDir(dir))();
});

test('two agents starting at once in one process on one data dir: exactly one holds it', async () => {
  const dir = dataDir();
  const results = await Promise.allSettled([lockDataDir(dir), lockDataDir(dir), lockDataDir(dir)]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof DataDirInUseError);
  for (const r of results) if (r.status === 'fulfilled') await r.value();
});

test('a lock held by another live process is refused with its pid', async () => {
  const dir = dataDir();
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    writeFileSync(join(dir, LOCK_FILE), `${JSON.stringify({ pid: other.pid })}\n`);
    await assert.rejects(lockDataDir(dir), new DataDirInUseError(dir, other.pid!));
  } finally {
    other.kill('SIGKILL');
  }
});

test('a lock written on another host (a shared data dir) is never judged stale here', async () => {
  const dir = dataDir();
  writeFileSync(
    join(dir, LOCK_FILE),
    `${JSON.stringify({ pid: 999_999_999, host: 'elsewhere', boot: 'x' })}\n`,
  );
  await assert.rejects(lockDataDir(dir), new DataDirInUseError(dir, 999_999_999, 'elsewhere'));
});

test('stale locks are taken over: a dead pid, our own pid from an earlier run, a reused pid, an unreadable file', async () => {
  const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => dead.once('exit', resolve));
  const living = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    for (const content of [
      JSON.stringify({ pid: dead.pid }),
      // A restarted container: the agent has the same pid as the run that left the lock.
      JSON.stringify({ pid: process.pid, start: '1' }),
      // The pid now belongs to a process that started after the lock was written.
      ...(existsSync('/proc/self/stat') ? [JSON.stringify({ pid: living.pid, start: '1' })] : []),
      '',
      'not json',
    ]) {
      const dir = dataDir();
      writeFileSync(join(dir, LOCK_FILE), content);
      const release = await lockDataDir(dir);
      assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid, content);
      await release();
    }
  } finally {
    living.kill('SIGKILL');
  }
});
