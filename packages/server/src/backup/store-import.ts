import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { loadSqlite } from '../store/db.js';
import { migrationProvider, migrations } from '../store/migrations/index.js';
import type { RowsItem } from './rows.js';

export type Dialect = 'sqlite' | 'postgres';

/** Tables named at run time, from the backup. */
type AnyTables = Record<string, Record<string, unknown>>;

/** A store opened on one connection, so that a whole restore is one transaction. */
interface Exclusive {
  db: Kysely<AnyTables>;
  dialect: Dialect;
  close(): Promise<void>;
}

const pgTypes = {
  getTypeParser: (oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
};

async function exclusive(target: { dialect: Dialect; location: string }): Promise<Exclusive> {
  if (target.dialect === 'sqlite') {
    const Database = loadSqlite();
    const database = new Database(target.location);
    database.pragma('foreign_keys = ON');
    const db = new Kysely<AnyTables>({ dialect: new SqliteDialect({ database }) });
    return { db, dialect: 'sqlite', close: () => db.destroy() };
  }
  const client = new pg.Client({ connectionString: target.location, types: pgTypes as pg.CustomTypesConfig });
  await client.connect();
  // Kysely asks a pool for a connection per query: this one always hands out the same client.
  const only = { query: client.query.bind(client), release: () => {} };
  const pool = { connect: async () => only, end: async () => {} };
  const db = new Kysely<AnyTables>({ dialect: new PostgresDialect({ pool: pool as unknown as pg.Pool }) });
  return {
    db,
    dialect: 'postgres',
    close: async () => {
      await db.destroy();
      await client.end();
    },
  };
}

/**
 * Why this release cannot make the schema a backup was taken at, if it cannot: the backup's
 * migrations must be this release's first ones, in order. A backup from an older release is
 * fine (the server migrates the rest at start); one from a newer release is not.
 */
export function schemaProblem(backup: readonly string[], madeBy: string): string | undefined {
  const known = Object.keys(migrations('sqlite')).sort();
  const unknown = backup.filter((name) => !known.includes(name));
  if (unknown.length > 0)
    return `it was made by Muster ${madeBy}, whose schema has migrations this release does not know (${unknown.join(', ')}); restore it with that release or a later one`;
  if (backup.some((name, i) => known[i] !== name))
    return `its schema migrations (${backup.join(', ')}) are not the first ones of this release`;
  if (backup.length === 0) return 'its store has no schema migrations';
  return undefined;
}

/** The tables a PostgreSQL database holds in its current schema. */
export async function postgresTables(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const rows = await client.query(
      "select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by 1",
    );
    return rows.rows.map((r) => r.table_name as string);
  } finally {
    await client.end();
  }
}

/** Other sessions connected to the database: servers using it, or someone's psql. */
export async function postgresSessions(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const rows = await client.query(
      'select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );
    return rows.rows[0].n as number;
  } finally {
    await client.end();
  }
}

/**
 * Makes the backup's schema in the target and loads its rows, in one transaction: either all of
 * it is there afterwards or none. `replace` first drops the tables the database already holds
 * (PostgreSQL with --force); a SQLite target is always a fresh file.
 */
export async function importRows(
  target: { dialect: Dialect; location: string },
  schema: readonly string[],
  rows: AsyncIterable<RowsItem> | Iterable<RowsItem>,
  replace: boolean,
): Promise<Record<string, number>> {
  const store = await exclusive(target);
  const { db } = store;
  try {
    await sql.raw(store.dialect === 'sqlite' ? 'begin immediate' : 'begin').execute(db);
    try {
      if (replace && store.dialect === 'postgres') await dropTables(db);
      await makeSchema(db, store.dialect, schema.at(-1)!);
      const counts = await insertRows(db, rows);
      if (store.dialect === 'postgres') await resetSequences(db);
      await sql`commit`.execute(db);
      return counts;
    } catch (err) {
      await sql`rollback`.execute(db).catch(() => {});
      throw err;
    }
  } finally {
    await store.close();
  }
}

async function dropTables(db: Kysely<AnyTables>): Promise<void> {
  const tables = await sql<{ name: string }>`select table_name as name from information_schema.tables
    where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(db);
  for (const { name } of tables.rows) await sql`drop table if exists ${sql.table(name)} cascade`.execute(db);
}

/** Runs this release's migrations up to the backup's last, inside the caller's transaction. */
async function makeSchema(db: Kysely<AnyTables>, dialect: Dialect, last: string): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider(dialect), disableTransactions: true });
  const { error, results } = await migrator.migrateTo(last);
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const why = error instanceof Error ? error.message : String(error ?? failed?.migrationName);
    throw new Error(`making the schema failed: ${why}`);
  }
}

async function insertRows(
  db: Kysely<AnyTables>,
  rows: AsyncIterable<RowsItem> | Iterable<RowsItem>,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let table = '';
  let columns: string[] = [];
  let batch: Record<string, unknown>[] = [];
  const flush = async () => {
    if (batch.length > 0) await db.insertInto(table).values(batch).execute();
    batch = [];
  };
  for await (const item of rows) {
    if (item.kind === 'table') {
      await flush();
      ({ table, columns } = item);
      counts[table] = 0;
      // Migrations seed some tables (the CA rotation's one row): the backup's rows replace them.
      await db.deleteFrom(table).execute();
      continue;
    }
    batch.push(Object.fromEntries(columns.map((c, i) => [c, item.values[i]])));
    counts[table]! += 1;
    // Both dialects bind a bounded number of parameters per statement.
    if (batch.length * columns.length >= 5_000) await flush();
  }
  await flush();
  return counts;
}

/** Loaded keys were given explicitly: each serial column's sequence must continue after them. */
async function resetSequences(db: Kysely<AnyTables>): Promise<void> {
  const serials = await sql<{ tbl: string; col: string; seq: string }>`select table_name as tbl,
      column_name as col, pg_get_serial_sequence(quote_ident(table_name), column_name) as seq
    from information_schema.columns
    where table_schema = current_schema() and column_default like 'nextval(%'`.execute(db);
  for (const { tbl, col, seq } of serials.rows) {
    await sql`select setval(${seq}, coalesce((select max(${sql.ref(col)}) from ${sql.table(tbl)}), 0) + 1, false)`.execute(
      db,
    );
  }
}
