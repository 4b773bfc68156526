import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { assertRefused, type BackupFixture, backupFixture, runLong } from '../support/backups.js';
import { describeResult, Sandbox } from '../support/sandbox.js';

// Where a restore may go, and what it needs to be told: the data dir and the file, a backup
// file that is not overwritten by accident, and PostgreSQL databases that hold a store or that
// something is connected to. Each refusal leaves the target as it was.
describe('muster restore and backup refuse a target they would clobber', () => {
  const sandbox = new Sandbox();
  let f: BackupFixture;
  before(async () => {
    f = await backupFixture(sandbox);
  });
  after(() => sandbox.cleanup());

  test('restore needs the data dir and the file; backup will not overwrite without --force', async () => {
    assertRefused(
      await runLong(sandbox, ['restore', f.backup, '--passphrase-file', f.passphrase]),
      2,
      /^muster restore: --data-dir is required/,
    );
    assertRefused(
      await runLong(sandbox, [
        'restore',
        '--data-dir',
        join(f.parent, 'x'),
        '--passphrase-file',
        f.passphrase,
      ]),
      2,
      /^muster restore: expected the backup FILE to restore$/,
    );
    assertRefused(
      await f.restore(join(f.work, 'absent.age'), join(f.parent, 'x')),
      1,
      /^muster restore: cannot restore .+absent\.age: cannot read .+absent\.age \(ENOENT\); nothing was written$/,
    );
    const first = readFileSync(f.backup);
    assertRefused(
      await runLong(sandbox, [
        'backup',
        '--data-dir',
        f.server.dataDir,
        '--out',
        f.backup,
        '--passphrase-file',
        f.passphrase,
      ]),
      1,
      /^muster backup: cannot back up to .+fleet\.age: .+fleet\.age already exists; give --force to replace it; nothing was written$/,
    );
    assert.deepEqual(readFileSync(f.backup), first);
    f.assertNothingRestored(join(f.parent, 'x'));
  });

  if (process.env.MUSTER_TEST_PG_URL) {
    test('a restore into a PostgreSQL database that holds a store, or that something uses, is refused', async () => {
      const db = await sandbox.postgresDatabase();
      const client = new pg.Client({ connectionString: db });
      await client.connect();
      try {
        await client.query('create table kept (id int)');
        const target = join(f.parent, 'pg-target');
        assertRefused(
          await f.restore(f.backup, target, '--db', db),
          1,
          /^muster restore: cannot restore .+: the database \S+ on \S+ is in use \(1 other session, a running server\?\); stop what uses it first; nothing was written$/,
        );
        f.assertNothingRestored(target);
        await client.end();
        assertRefused(
          await f.restore(f.backup, target, '--db', db),
          1,
          /^muster restore: cannot restore .+: the database \S+ on \S+ is not empty \(1 table\); restore into an empty database, or give --force to replace what it holds; nothing was written$/,
        );
        f.assertNothingRestored(target);
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
      const forced = await f.restore(f.backup, join(f.parent, 'pg-forced'), '--db', db, '--force');
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
      assert.deepEqual(readdirSync(f.parent), ['pg-forced']);
    });
  }
});
