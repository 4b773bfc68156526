import assert from 'node:assert/strict';
import { chmodSync, existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer } from '../testing/harness.js';

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');

/** The SQLite files a store at `db` leaves once it has written: the database, its WAL and its index. */
const sqliteFiles = (db: string) => [db, `${db}-wal`, `${db}-shm`];

// Under umask 000 every file the server makes would be world-readable or writable unless the
// server sets the mode itself: this is the host an operator's careless shell gives it.
describe('files the server makes are its own, whatever the umask', () => {
  let previous: number;
  const dirs: string[] = [];
  before(() => {
    previous = process.umask(0);
  });
  after(async () => {
    process.umask(previous);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'muster-modes-'));
    dirs.push(dir);
    return dir;
  };

  test('a data dir made on first start is 0700, and the store in it and its -wal and -shm are 0600', async () => {
    const dataDir = join(await tempDir(), 'fresh', 'data');
    const t = await startTestServer('sqlite', { dataDir });
    try {
      assert.equal(modeOf(dataDir), '0700');
      // A write, so the WAL holds something and every file exists.
      assert.equal((await t.admin('POST', '/v1/tokens', {})).status, 201);
      for (const file of sqliteFiles(join(dataDir, 'muster.db'))) {
        assert.ok(existsSync(file), `${file} exists`);
        assert.equal(modeOf(file), '0600', file);
      }
      for (const key of ['ca.key', 'server.key', 'ledger.key', 'admin.token', 'root.key'])
        assert.equal(modeOf(join(dataDir, key)), '0600', key);
    } finally {
      await t.close();
    }
  });

  test('a store given with --db outside the data dir is 0600 too, -wal and -shm included', async () => {
    const elsewhere = await tempDir();
    const db = join(elsewhere, 'x.db');
    const t = await startTestServer('sqlite', { db: `sqlite:${db}` });
    try {
      assert.equal((await t.admin('POST', '/v1/tokens', {})).status, 201);
      for (const file of sqliteFiles(db)) assert.equal(modeOf(file), '0600', file);
    } finally {
      await t.close();
    }
  });

  test('a store an earlier release left readable by others is narrowed to 0600 at start', async () => {
    const dataDir = await tempDir();
    const first = await startTestServer('sqlite', { dataDir });
    await first.close();
    const db = join(dataDir, 'muster.db');
    for (const file of sqliteFiles(db)) if (existsSync(file)) chmodSync(file, 0o644);
    const again = await startTestServer('sqlite', { dataDir });
    try {
      assert.equal((await again.admin('POST', '/v1/tokens', {})).status, 201);
      for (const file of sqliteFiles(db)) assert.equal(modeOf(file), '0600', file);
    } finally {
      await again.close();
    }
  });
});
