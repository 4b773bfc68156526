import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  assertNoStackTrace,
  type CliResult,
  describeResult,
  Sandbox,
  type ServerUnderTest,
} from '../support/sandbox.js';

/** A refused verb: its exit code, one line on stderr matching `sentence`, no stack trace. */
function assertRefused(result: CliResult, code: 1 | 2, sentence: RegExp): void {
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
async function runLong(sandbox: Sandbox, args: readonly string[]): Promise<CliResult> {
  const proc = sandbox.spawn(args);
  const exit = await proc.waitForExit(120_000);
  return { ...exit, stdout: proc.stdout, stderr: proc.stderr };
}

/** The data dir's files other than the store (which a running server keeps changing). */
const keyFiles = (dir: string) => readdirSync(dir).filter((name) => !name.startsWith('muster.db'));

/** The files' SHA-256: what "nothing was written" is checked against. */
function contents(dir: string, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    names.map((n) => [
      n,
      createHash('sha256')
        .update(readFileSync(join(dir, n)))
        .digest('hex'),
    ]),
  );
}

// What an operator gets wrong with backup and restore, and what Muster answers: each refusal
// is an exit code and one sentence, and leaves the target exactly as it was.
describe('muster backup and restore refuse bad input and write nothing', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let backup: string;
  let passphrase: string;
  let work: string;
  /** A folder a restore may write into; checked empty of leftovers after each refusal. */
  let parent: string;

  const restore = (file: string, dataDir: string, ...more: string[]) =>
    runLong(sandbox, ['restore', file, '--data-dir', dataDir, '--passphrase-file', passphrase, ...more]);
  const assertNothingRestored = (target: string) => {
    assert.equal(existsSync(target), false, `${target} was made`);
    assert.deepEqual(readdirSync(parent), [], 'the restore left files behind');
  };

  before(async () => {
    server = await sandbox.startServer();
    work = sandbox.tempDir('backup');
    parent = sandbox.tempDir('restore');
    passphrase = join(work, 'pass');
    writeFileSync(passphrase, 'tarmac-lantern-quiet-orbit\n', { mode: 0o600 });
    backup = join(work, 'fleet.age');
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
  });
  after(() => sandbox.cleanup());

  test('a truncated backup is refused', async () => {
    const cut = join(work, 'cut.age');
    const whole = readFileSync(backup);
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const target = join(parent, 'from-cut');
    assertRefused(
      await restore(cut, target),
      1,
      /^muster restore: cannot restore .+cut\.age: it is damaged: truncated or changed after it was written \(it fails authentication\); nothing was written$/,
    );
    assertNothingRestored(target);
  });

  test('a backup with one byte changed is refused', async () => {
    const changed = join(work, 'changed.age');
    const bytes = Buffer.from(readFileSync(backup));
    bytes[bytes.length - 100]! ^= 0x01;
    writeFileSync(changed, bytes);
    const target = join(parent, 'from-changed');
    assertRefused(
      await restore(changed, target),
      1,
      /^muster restore: cannot restore .+changed\.age: it is damaged: truncated or changed after it was written .+; nothing was written$/,
    );
    assertNothingRestored(target);
  });

  test('the wrong passphrase is refused', async () => {
    const wrong = join(work, 'wrong-pass');
    writeFileSync(wrong, 'tarmac-lantern-quiet-orbiT\n', { mode: 0o600 });
    const target = join(parent, 'wrong');
    const result = await runLong(sandbox, [
      'restore',
      backup,
      '--data-dir',
      target,
      '--passphrase-file',
      wrong,
    ]);
    assertRefused(
      result,
      1,
      /^muster restore: cannot restore .+fleet\.age: the passphrase does not open this backup \(wrong passphrase, or not a backup made with it\); nothing was written$/,
    );
    assertNothingRestored(target);
  });

  test('a passphrase file that is missing or empty is a usage error, for backup and restore', async () => {
    const empty = join(work, 'empty-pass');
    writeFileSync(empty, '\n', { mode: 0o600 });
    const missing = join(work, 'no-such-pass');
    const out = join(work, 'never.age');
    const target = join(parent, 'never');
    for (const [file, why] of [
      [missing, /^muster (backup|restore): --passphrase-file: cannot read .+no-such-pass \(ENOENT\)$/],
      [empty, /^muster (backup|restore): --passphrase-file: .+empty-pass is empty$/],
    ] as const) {
      const backedUp = await runLong(sandbox, [
        'backup',
        '--data-dir',
        server.dataDir,
        '--out',
        out,
        '--passphrase-file',
        file,
      ]);
      assertRefused(backedUp, 2, why);
      assert.equal(existsSync(out), false, 'no backup file was written');
      assertRefused(
        await runLong(sandbox, ['restore', backup, '--data-dir', target, '--passphrase-file', file]),
        2,
        why,
      );
      assertNothingRestored(target);
    }
    assertRefused(
      await runLong(sandbox, ['backup', '--data-dir', server.dataDir, '--out', out]),
      2,
      /^muster backup: --passphrase-file is required/,
    );
    assert.deepEqual(
      readdirSync(work).filter((n) => n.startsWith('.')),
      [],
      'no temporary files are left beside --out',
    );
  });

  test('a restore onto a data dir that is not empty needs --force', async () => {
    const holder = sandbox.tempDir('occupied');
    const target = join(holder, 'occupied');
    mkdirSync(target);
    writeFileSync(join(target, 'notes.txt'), 'mine\n');
    assertRefused(
      await restore(backup, target),
      1,
      /^muster restore: cannot restore .+: .+occupied is not empty; restore into a new or empty folder, or give --force to replace what it holds; nothing was written$/,
    );
    assert.deepEqual(readdirSync(target), ['notes.txt']);
    assert.deepEqual(readdirSync(holder), ['occupied']);
    // With --force it is replaced by the backup's data dir, whole.
    const forced = await restore(backup, target, '--force');
    assert.equal(forced.code, 0, describeResult(forced));
    assert.deepEqual(readdirSync(target).sort(), [...keyFiles(server.dataDir), 'muster.db'].sort());
    assert.equal(statSync(join(target, 'ca.key')).mode & 0o777, 0o600, 'keys keep their mode');
    assert.deepEqual(readdirSync(holder), ['occupied'], 'nothing but the target is left');
  });

  test("a restore onto a running server's data dir is refused, even with --force", async () => {
    const before = contents(server.dataDir, keyFiles(server.dataDir));
    const result = await restore(backup, server.dataDir, '--force');
    assertRefused(
      result,
      1,
      new RegExp(
        `^muster restore: cannot restore .+: .+muster\\.db(-wal|-shm)? is open in a running process \\(pid ${server.process.pid}: .*server.*\\); stop the server using .+ first; nothing was written$`,
      ),
    );
    assert.deepEqual(
      contents(server.dataDir, keyFiles(server.dataDir)),
      before,
      'the keys and certificates are untouched',
    );
    const nodes = await sandbox.run(['nodes', 'ls', ...server.adminFlags]);
    assert.equal(nodes.code, 0, 'the server still serves');
  });

  test('restore needs the data dir and the file; backup will not overwrite without --force', async () => {
    assertRefused(
      await runLong(sandbox, ['restore', backup, '--passphrase-file', passphrase]),
      2,
      /^muster restore: --data-dir is required/,
    );
    assertRefused(
      await runLong(sandbox, ['restore', '--data-dir', join(parent, 'x'), '--passphrase-file', passphrase]),
      2,
      /^muster restore: expected the backup FILE to restore$/,
    );
    assertRefused(
      await restore(join(work, 'absent.age'), join(parent, 'x')),
      1,
      /^muster restore: cannot restore .+absent\.age: cannot read .+absent\.age \(ENOENT\); nothing was written$/,
    );
    const first = readFileSync(backup);
    assertRefused(
      await runLong(sandbox, [
        'backup',
        '--data-dir',
        server.dataDir,
        '--out',
        backup,
        '--passphrase-file',
        passphrase,
      ]),
      1,
      /^muster backup: cannot back up to .+fleet\.age: .+fleet\.age already exists; give --force to replace it; nothing was written$/,
    );
    assert.deepEqual(readFileSync(backup), first);
    assertNothingRestored(join(parent, 'x'));
  });

  if (process.env.MUSTER_TEST_PG_URL) {
    test('a restore into a PostgreSQL database that holds a store, or that something uses, is refused', async () => {
      const db = await sandbox.postgresDatabase();
      const client = new pg.Client({ connectionString: db });
      await client.connect();
      try {
        await client.query('create table kept (id int)');
        const target = join(parent, 'pg-target');
        assertRefused(
          await restore(backup, target, '--db', db),
          1,
          /^muster restore: cannot restore .+: the database \S+ on \S+ is in use \(1 other session, a running server\?\); stop what uses it first; nothing was written$/,
        );
        assertNothingRestored(target);
        await client.end();
        assertRefused(
          await restore(backup, target, '--db', db),
          1,
          /^muster restore: cannot restore .+: the database \S+ on \S+ is not empty \(1 table\); restore into an empty database, or give --force to replace what it holds; nothing was written$/,
        );
        assertNothingRestored(target);
      } finally {
        await client.end().catch(() => {});
      }
      const check = new pg.Client({ connectionString: db });
      await check.connect();
      try {
        const tables = await check.query(
          "select table_name from information_schema.tables where table_schema = 'public'",
        );
        assert.deepEqual(tables.rows, [{ table_name: 'kept' }], 'the database is as it was');
      } finally {
        await check.end();
      }
      // With --force the database is replaced by the backup's store (a SQLite backup, as rows).
      const forced = await restore(backup, join(parent, 'pg-forced'), '--db', db, '--force');
      assert.equal(forced.code, 0, describeResult(forced));
      const after = new pg.Client({ connectionString: db });
      await after.connect();
      try {
        const tables = (
          await after.query("select table_name from information_schema.tables where table_schema = 'public'")
        ).rows.map((r) => r.table_name as string);
        assert.ok(!tables.includes('kept') && tables.includes('nodes'), tables.join(', '));
      } finally {
        await after.end();
      }
      assert.deepEqual(readdirSync(parent), ['pg-forced']);
    });
  }
});
