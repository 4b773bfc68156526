import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { canonicalJson, leafHash, verifyExport } from '@muster/proto';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { createPgDatabase, dialects, startTestServer, type TestServer } from '../../testing/harness.js';
import { migrationProvider } from './index.js';

/** A bare Kysely on the store's database, without the migrations openStore runs. */
function bareKysely(url: string): Kysely<unknown> {
  if (url.startsWith('postgres')) {
    return new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }) });
  }
  const require = createRequire(import.meta.url);
  const name = Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3' : 'better-sqlite3-node20';
  const Database = require(name);
  return new Kysely({ dialect: new SqliteDialect({ database: new Database(url.slice('sqlite:'.length)) }) });
}

// Decisions recorded before the ledger existed (0001's table) become the ledger's first entries
// in 0002, hashed by the frozen copy of 0.1.0's hashing: the result must be the log the live
// ledger code reads, verifies and signs.
for (const dialect of dialects()) {
  describe(`0002_ledger folds the skeleton's decisions into the ledger (${dialect})`, () => {
    let dataDir: string;
    let pgDb: Awaited<ReturnType<typeof createPgDatabase>> | undefined;
    let url: string;
    let t: TestServer;
    const decisions = Array.from({ length: 5 }, (_, i) => ({
      ts: Date.UTC(2026, 0, 1, 0, 0, i),
      kind: i % 2 ? 'token.created' : 'node.enrolled',
      actor: 'admin',
      subject: `node:n${i}`,
      data: JSON.stringify({ name: `n${i}`, labels: { z: 'last', a: 'first' } }),
    }));

    before(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'muster-migrate-'));
      if (dialect === 'postgres') pgDb = await createPgDatabase();
      url = pgDb?.url ?? `sqlite:${join(dataDir, 'muster.db')}`;
      const db = bareKysely(url);
      try {
        const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
        const skeleton = await migrator.migrateTo('0001_skeleton');
        assert.equal(skeleton.error, undefined);
        await (db as Kysely<{ decisions: (typeof decisions)[number] }>)
          .insertInto('decisions')
          .values(decisions)
          .execute();
      } finally {
        await db.destroy();
      }
      t = await startTestServer(dialect, { dataDir, db: url });
    });
    after(async () => {
      await t?.close();
      await pgDb?.drop();
      await rm(dataDir, { recursive: true, force: true });
    });

    test('each decision is an entry at its seq, hashed as the live code hashes it, and the log verifies', async () => {
      const page = await t.admin('GET', '/v1/ledger/entries?start=0&end=5');
      assert.equal(page.status, 200, page.body);
      assert.equal(page.json.entries.length, 5);
      for (const [seq, e] of page.json.entries.entries()) {
        const d = decisions[seq]!;
        const expected = canonicalJson({
          v: 1,
          seq,
          ts: new Date(d.ts).toISOString(),
          kind: d.kind,
          actor: d.actor,
          subject: d.subject,
          data: JSON.parse(d.data),
        });
        assert.equal(e.entry, expected);
        assert.equal(e.leafHash, leafHash(expected).toString('base64'));
      }
      let note = '';
      for (let i = 0; i < 100 && note.split('\n')[1] !== '5'; i++) {
        note = (await t.admin('GET', '/v1/ledger/checkpoint')).body;
        if (note.split('\n')[1] !== '5') await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const vkey = (await t.admin('GET', '/v1/ledger/key')).json.vkey as string;
      const header = JSON.stringify({
        vkey,
        checkpoint: note,
        leafHashes: Buffer.concat(
          page.json.entries.map((e: { leafHash: string }) => Buffer.from(e.leafHash, 'base64')),
        ).toString('base64'),
      });
      async function* lines() {
        yield header;
        for (const e of page.json.entries) yield e.entry as string;
      }
      assert.deepEqual(await verifyExport(lines(), vkey), { ok: true, size: 5 });
    });
  });
}

/** The schema as the database reports it, in an order that does not depend on how it was made. */
async function schemaOf(db: Kysely<unknown>, dialect: string): Promise<unknown[]> {
  if (dialect === 'sqlite') {
    const { rows } =
      await sql`select type, name, tbl_name, sql from sqlite_master order by type, name`.execute(db);
    return rows;
  }
  const columns = await sql`select table_name, column_name, data_type, is_nullable, column_default
    from information_schema.columns where table_schema = 'public'
    order by table_name, column_name`.execute(db);
  const indexes = await sql`select tablename, indexname, indexdef from pg_indexes
    where schemaname = 'public' order by indexname`.execute(db);
  return [...columns.rows, ...indexes.rows];
}

/** The last migration 0.1.0 shipped, the store the fixture holds. */
const RELEASED_THROUGH = '0009_console_sessions';

const fixture = new URL('../../../../../test/fixtures/store-0.1.0/', import.meta.url).pathname;

// The files are a copy of what 0.1.0 ran: a store they build today must be the store 0.1.0 built.
for (const dialect of dialects()) {
  test(`the migrations build the schema 0.1.0 built (${dialect})`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'muster-schema-'));
    const made = dialect === 'postgres' ? await createPgDatabase() : undefined;
    const released = dialect === 'postgres' ? await createPgDatabase() : undefined;
    try {
      if (released) {
        execFileSync(
          'psql',
          ['-q', '-v', 'ON_ERROR_STOP=1', '-f', join(fixture, 'postgres/dump.sql'), released.url],
          {
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
      } else await copyFile(join(fixture, 'sqlite/muster.db'), join(dir, 'released.db'));
      const fresh = bareKysely(made?.url ?? `sqlite:${join(dir, 'fresh.db')}`);
      const old = bareKysely(released?.url ?? `sqlite:${join(dir, 'released.db')}`);
      try {
        // Up to 0.1.0's last migration: later ones are not released yet, so they change nothing here.
        const migrator = new Migrator({ db: fresh, provider: migrationProvider(dialect) });
        assert.equal((await migrator.migrateTo(RELEASED_THROUGH)).error, undefined);
        assert.deepEqual(await schemaOf(fresh, dialect), await schemaOf(old, dialect));
      } finally {
        await fresh.destroy();
        await old.destroy();
      }
    } finally {
      await made?.drop();
      await released?.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

const sources = new URL('../../../src/store/', import.meta.url).pathname;
const importsOf = (text: string) =>
  [...text.matchAll(/^(?:import|export)[^;]*?from '([^']+)'/gms)].map((m) => m[1]!);

// What keeps a released migration frozen: it reaches nothing that later code can change.
test('a migration imports only kysely, Node built-ins and the frozen helpers; store/ imports no feature', async () => {
  const dir = join(sources, 'migrations');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  assert.ok(files.includes('0001_skeleton.ts'), `the sources are at ${dir}`);
  for (const file of files.filter((f) => f !== 'index.ts')) {
    for (const from of importsOf(await readFile(join(dir, file), 'utf8'))) {
      assert.match(from, /^(kysely|node:[a-z]+|\.\/[a-z]+-v\d+\.js)$/, `${file} imports ${from}`);
    }
  }
  for (const file of (await readdir(sources)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    for (const from of importsOf(await readFile(join(sources, file), 'utf8'))) {
      assert.doesNotMatch(from, /features\//, `store/${file} imports ${from}`);
    }
  }
  for (const from of importsOf(await readFile(join(dir, 'index.ts'), 'utf8'))) {
    assert.doesNotMatch(from, /features\//, `store/migrations/index.ts imports ${from}`);
  }
});
