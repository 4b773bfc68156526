import type BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { loadSqlite } from '../store/db.js';
import { MIGRATION_TABLES, parentsFirst, type RowsItem, RowsWriter, rowValue } from './rows.js';

/** What a store export says about the store it copied. */
export interface StoreSnapshot {
  migrations: string[];
  /** Rows per table, when the store was exported as rows. */
  tables?: Record<string, number>;
  /** The CA rotation as the snapshot records it, to check the data dir was copied in step with it. */
  rotation: string;
}

const ROTATION_SQL = 'select state, new_serial from ca_rotation where id = 1';

/**
 * Copies a live SQLite store with SQLite's online backup API: the server keeps writing. All pages
 * go in one step, which holds one read transaction (WAL: writers are not blocked), so the copy is
 * the store as of one moment and is never restarted by a write. The copy is then made a
 * stand-alone file (rollback journal) and checked.
 */
export async function backupSqlite(path: string, out: string): Promise<StoreSnapshot> {
  const Database = loadSqlite();
  let source: BetterSqlite3.Database;
  try {
    source = new Database(path, { fileMustExist: true });
  } catch (err) {
    throw new Error(`cannot open the store ${path}: ${(err as Error).message}`);
  }
  try {
    source.pragma('busy_timeout = 5000');
    await source.backup(out, { progress: () => 0x7fffffff });
  } finally {
    source.close();
  }
  const copy = new Database(out, { fileMustExist: true });
  try {
    copy.pragma('journal_mode = DELETE');
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`the copy of the store fails SQLite's check: ${String(check)}`);
    return {
      migrations: sqliteMigrations(copy, path),
      rotation: rotationOf(copy.prepare(ROTATION_SQL).get()),
    };
  } finally {
    copy.close();
  }
}

function sqliteMigrations(db: BetterSqlite3.Database, path: string): string[] {
  try {
    return db.prepare('select name from kysely_migration order by name').pluck().all() as string[];
  } catch {
    throw new Error(`${path} is not a Muster store (it has no schema migrations)`);
  }
}

const rotationOf = (row: unknown) => JSON.stringify(row ?? null);

/** The CA rotation as the store records it now. */
export async function storeRotation(db: string): Promise<string> {
  if (db.startsWith('sqlite:')) {
    const Database = loadSqlite();
    // Not read-only: a read-only connection to a WAL store no server holds leaves -wal and -shm
    // behind (owned by whoever ran the backup); the last read-write one to close removes them.
    const store = new Database(db.slice('sqlite:'.length), { fileMustExist: true });
    try {
      store.pragma('busy_timeout = 5000');
      return rotationOf(store.prepare(ROTATION_SQL).get());
    } finally {
      store.close();
    }
  }
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    return rotationOf((await client.query(ROTATION_SQL)).rows[0]);
  } finally {
    await client.end();
  }
}

/** Every table of a SQLite store as rows, parents first: for restoring it into PostgreSQL. */
export function* sqliteRows(path: string): Generator<RowsItem> {
  const Database = loadSqlite();
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = (
      db
        .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")
        .pluck()
        .all() as string[]
    ).filter((t) => !MIGRATION_TABLES.has(t));
    const edges: Array<[string, string]> = [];
    for (const table of tables) {
      const fks = db.prepare('select "table" from pragma_foreign_key_list(?)').pluck().all(table) as string[];
      for (const parent of fks) edges.push([table, parent]);
    }
    for (const table of parentsFirst(tables, edges)) {
      const columns = db
        .prepare('select name from pragma_table_info(?) order by cid')
        .pluck()
        .all(table) as string[];
      yield { kind: 'table', table, columns };
      const select = db.prepare(`select ${columns.map(quote).join(', ')} from ${quote(table)}`).raw();
      for (const values of select.iterate() as Iterable<unknown[]>) {
        yield { kind: 'row', values: values.map((v, i) => rowValue(v, table, columns[i]!)) };
      }
    }
  } finally {
    db.close();
  }
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

// bigint columns hold millisecond times and counts: numbers, refused if they would not fit.
const pgTypes = {
  getTypeParser: (oid: number, format?: string) => {
    if (oid === 20)
      return (text: string) => {
        const value = Number(text);
        if (!Number.isSafeInteger(value)) throw new Error(`a bigint ${text} does not fit a backup's numbers`);
        return value;
      };
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/**
 * Exports a live PostgreSQL store as rows, through one REPEATABLE READ, READ ONLY transaction:
 * every table is read from the same snapshot while the servers keep writing, and nothing is
 * locked against them. Rows are fetched through a cursor, a thousand at a time.
 */
export async function exportPostgres(url: string, out: string): Promise<StoreSnapshot> {
  const client = new pg.Client({ connectionString: url, types: pgTypes as pg.CustomTypesConfig });
  await client.connect();
  const writer = new RowsWriter(out);
  try {
    await client.query('begin isolation level repeatable read read only');
    await client.query('set local statement_timeout = 0');
    const migrations = await pgMigrations(client);
    const rotation = rotationOf((await client.query(ROTATION_SQL)).rows[0]);
    const tables: Record<string, number> = {};
    for (const table of await pgTables(client)) {
      const columns = (
        await client.query(
          'select column_name from information_schema.columns where table_schema = current_schema() and table_name = $1 order by ordinal_position',
          [table],
        )
      ).rows.map((r) => r.column_name as string);
      await writer.write({ kind: 'table', table, columns });
      tables[table] = await copyTable(client, writer, table, columns);
    }
    await client.query('commit');
    return { migrations, tables, rotation };
  } finally {
    await writer.close();
    await client.end();
  }
}

async function pgMigrations(client: pg.Client): Promise<string[]> {
  try {
    return (await client.query('select name from kysely_migration order by name')).rows.map(
      (r) => r.name as string,
    );
  } catch {
    throw new Error('that database is not a Muster store (it has no schema migrations)');
  }
}

async function pgTables(client: pg.Client): Promise<string[]> {
  const tables = (
    await client.query(
      "select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'",
    )
  ).rows
    .map((r) => r.table_name as string)
    .filter((t) => !MIGRATION_TABLES.has(t));
  const edges = (
    await client.query(
      "select conrelid::regclass::text as child, confrelid::regclass::text as parent from pg_constraint where contype = 'f' and connamespace = current_schema()::regnamespace",
    )
  ).rows.map((r) => [r.child as string, r.parent as string] as [string, string]);
  return parentsFirst(tables, edges);
}

async function copyTable(client: pg.Client, writer: RowsWriter, table: string, columns: string[]) {
  await client.query(
    `declare backup_rows no scroll cursor for select ${columns.map(quote).join(', ')} from ${quote(table)}`,
  );
  let count = 0;
  for (;;) {
    const page = await client.query({ text: 'fetch 1000 from backup_rows', rowMode: 'array' });
    await writer.writeRows(
      (page.rows as unknown[][]).map((values) => values.map((v, i) => rowValue(v, table, columns[i]!))),
    );
    count += page.rows.length;
    if (page.rows.length < 1000) break;
  }
  await client.query('close backup_rows');
  return count;
}
