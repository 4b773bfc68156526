import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertNoStackTrace,
  type CliResult,
  describeResult,
  type Sandbox,
  type ServerUnderTest,
} from './sandbox.js';

/** A refused verb: its exit code, one line on stderr matching `sentence`, no stack trace. */
export function assertRefused(result: CliResult, code: 1 | 2, sentence: RegExp): void {
  assert.equal(result.code, code, describeResult(result));
  const lines = result.stderr.trim().split('\n');
  assert.match(lines[0]!, sentence);
  assert.equal(lines.length, code === 2 ? 2 : 1, result.stderr);
  assertNoStackTrace(result.stderr);
}

/**
 * Runs a backup or restore to its end. Each derives the scrypt key of the passphrase (about a
 * second of CPU, by design), which on a crowded two-core test machine can take longer than the
 * 20 s other verbs are given; the bound is for a hung process, not a measure of speed.
 */
export async function runLong(sandbox: Sandbox, args: readonly string[]): Promise<CliResult> {
  const proc = sandbox.spawn(args);
  const exit = await proc.waitForExit(120_000);
  return { ...exit, stdout: proc.stdout, stderr: proc.stderr };
}

/** A running server and a backup of it, with a folder for restores to write into. */
export interface BackupFixture {
  server: ServerUnderTest;
  /** The backup file, and the passphrase file it opens with. */
  backup: string;
  passphrase: string;
  /** Where the backup and the test's own files are. */
  work: string;
  /** A folder a restore may write into; checked empty of leftovers after each refusal. */
  parent: string;
  restore(file: string, dataDir: string, ...more: string[]): Promise<CliResult>;
  assertNothingRestored(target: string): void;
}

export async function backupFixture(sandbox: Sandbox): Promise<BackupFixture> {
  const server = await sandbox.startServer();
  const work = sandbox.tempDir('backup');
  const parent = sandbox.tempDir('restore');
  const passphrase = join(work, 'pass');
  writeFileSync(passphrase, 'tarmac-lantern-quiet-orbit\n', { mode: 0o600 });
  const backup = join(work, 'fleet.age');
  const made = await runLong(sandbox, [
    'backup',
    '--data-dir',
    server.dataDir,
    '--out',
    backup,
    '--passphrase-file',
    passphrase,
  ]);
  assert.equal(made.code, 0, describeResult(made));
  return {
    server,
    backup,
    passphrase,
    work,
    parent,
    restore: (file, dataDir, ...more) =>
      runLong(sandbox, ['restore', file, '--data-dir', dataDir, '--passphrase-file', passphrase, ...more]),
    assertNothingRestored(target) {
      assert.equal(existsSync(target), false, `${target} was made`);
      assert.deepEqual(readdirSync(parent), [], 'the restore left files behind');
    },
  };
}
