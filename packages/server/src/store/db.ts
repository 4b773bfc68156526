import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import {
  Kysely,
  PostgresDialect,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteStatement,
  sql,
} from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { UnavailableError } from '../errors.js';
import { rateLimitedLog } from '../rate-limited-log.js';
import { type DialectTraits, postgresTraits, sqliteTraits } from './dialect.js';
import { GroupCommit } from './group-commit.js';
import { migrate } from './migrations/index.js';
import { type Notifications, postgresNotifications } from './notifications.js';
import type { Schema } from './schema.js';

/** The store: one Kysely query layer over SQLite or PostgreSQL. */
export interface Store {
  readonly db: Kysely<Schema>;
  readonly traits: DialectTraits;
  /** Signals to the other replicas, after commit; absent where there are none (SQLite). */
  readonly notifications?: Notifications;
  /**
   * Runs `fn` in a transaction and resolves once it is committed. On SQLite, concurrent
   * callers share one commit (group commit); on PostgreSQL each gets its own transaction and
   * the server groups the flushes.
   */
  write<T>(fn: (trx: Kysely<Schema>) => Promise<T>): Promise<T>;
  /** Resolves when the database answers; throws when it does not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Where a store says what goes wrong in the background (a lost connection): the server's log. */
export interface StoreLog {
  logger: Pick<Logger, 'warn'>;
  clock?: Clock;
}

/**
 * `sqlite:<path>` (or a bare path) for the embedded store, `postgres://…` for PostgreSQL.
 * Without `log`, background connection errors are dropped (a bench, a test of something else).
 */
export async function openStore(url: string, log?: StoreLog): Promise<Store> {
  const store =
    url.startsWith('postgres://') || url.startsWith('postgresql://')
      ? openPostgres(url, log)
      : openSqlite(url);
  try {
    await migrate(store.db as Kysely<unknown>, store.traits);
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

const require = createRequire(import.meta.url);

/**
 * better-sqlite3 13 ships Node-API prebuilds and is safe on Node 24, whose ObjectWrap change
 * makes 12.x abort when a statement is collected outside a context; but 13 crashes on Node 20.
 * So Node 22 and later load 13, and Node 20 loads 12, installed under an alias.
 */
export function loadSqlite(): typeof BetterSqlite3 {
  const major = Number(process.versions.node.split('.')[0]);
  const name = major >= 22 ? 'better-sqlite3' : 'better-sqlite3-node20';
  try {
    return require(name) as typeof BetterSqlite3;
  } catch (err) {
    throw new Error(
      `the embedded SQLite store needs the ${name} package built for Node ${process.versions.node} ` +
        `(${(err as Error).message.split('\n')[0]}); reinstall with build tools present, or use PostgreSQL`,
    );
  }
}

function openSqlite(url: string): Store {
  const path = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url;
  const Database = loadSqlite();
  createPrivately(path);
  const database = new Database(path);
  // WAL lets readers run beside the writer; FULL makes every commit survive power loss.
  database.pragma('journal_mode = WAL');
  tightenSqliteFiles(path);
  database.pragma('synchronous = FULL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
  const group = new GroupCommit(db);
  return {
    db,
    traits: sqliteTraits,
    write: (fn) => failClosed(group.run(fn), sqliteTraits),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

/**
 * Makes the database file 0600 before SQLite opens it, so it never exists readable by others,
 * whatever the umask. SQLite gives its `-wal` and `-shm` files the database file's mode.
 */
function createPrivately(path: string): void {
  if (path === '' || path === ':memory:' || existsSync(path)) return;
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * The store holds token hashes, sessions and the ledger: its files are the server's alone. A
 * store made by an earlier release (0644) is narrowed here, `-wal` and `-shm` included.
 */
function tightenSqliteFiles(path: string): void {
  if (path === '' || path === ':memory:') return;
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      chmodSync(file, 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      throw new Error(`cannot make the store file ${file} private (chmod 600): ${code}`);
    }
  }
}

/**
 * A write that fails because the store cannot take it (read-only, unreachable, full) becomes a
 * 503: the transaction rolled back, so the change and its ledger entry did not happen.
 */
async function failClosed<T>(write: Promise<T>, traits: DialectTraits): Promise<T> {
  try {
    return await write;
  } catch (err) {
    if (traits.isUnavailable(err)) {
      throw new UnavailableError(
        'the store cannot record this change right now; nothing was changed',
        'store_unavailable',
      );
    }
    throw err;
  }
}

/**
 * Kysely prepares every query afresh; a bounded cache of prepared statements keyed by their SQL
 * saves that work on hot paths and keeps statements from becoming garbage by the thousand.
 * Reuse is safe: better-sqlite3 runs each statement to completion synchronously.
 */
function withStatementCache(database: BetterSqlite3.Database, limit = 512): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare(text: string) {
      let statement = cache.get(text);
      if (statement) {
        cache.delete(text); // most recently used goes last
      } else {
        statement = database.prepare(text);
        if (cache.size >= limit) cache.delete(cache.keys().next().value!);
      }
      cache.set(text, statement);
      return statement as unknown as SqliteStatement;
    },
  };
}

// int8 and numeric come back as strings by default; every such column here is a
// millisecond time or a count well inside 2^53.
const pgTypes = {
  getTypeParser: (oid: number, format?: string) => {
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

function openPostgres(url: string, log: StoreLog | undefined): Store {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    types: pgTypes as pg.CustomTypesConfig,
    // Fail closed within a bound, never hang: no connection in 5 s, or a statement running
    // for 15 s, is an error the request answers with 503.
    connectionTimeoutMillis: 5_000,
    statement_timeout: 15_000,
  });
  // A client losing its connection (PostgreSQL restarted, a failover) must not crash the
  // process: idle ones are dropped by the pool, and one in use fails its query and is dropped
  // when released; the next query connects afresh. Each loss is said in the log (a line a
  // minute at most); the pool's own 'error' repeats what the client's handler already said.
  const lost = log
    ? rateLimitedLog(log.logger, 'postgres-pool', 'lost a PostgreSQL connection', log.clock)
    : () => {};
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', lost));
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    traits: postgresTraits,
    notifications: postgresNotifications(url, log),
    write: (fn) => failClosed(db.transaction().execute(fn), postgresTraits),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}
