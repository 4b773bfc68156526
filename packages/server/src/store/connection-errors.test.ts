import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { ManualClock } from '../clock.js';
import { poll } from '../features/events/sse.test-support.js';
import { StatusWatcher } from '../features/nodes/status-watch.js';
import { createPgDatabase, dialects } from '../testing/harness.js';
import { openStore, type Store } from './db.js';

/** A logger that keeps what it was told. */
function capture() {
  const lines: Array<{ source?: string; err?: unknown; suppressed?: number }> = [];
  return { lines, warn: (obj: object) => void lines.push(obj) };
}

/** Ends every session on the test's database but the asking one, as a PostgreSQL restart does. */
async function terminateSessions(url: string, where = 'true'): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const res = await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and ${where}`,
    );
    return res.rowCount ?? 0;
  } finally {
    await admin.end();
  }
}

for (const dialect of dialects().filter((d) => d === 'postgres')) {
  describe(`lost connections are said in the log, not dropped (${dialect})`, () => {
    let pgDb: Awaited<ReturnType<typeof createPgDatabase>>;
    let store: Store;
    const logger = capture();
    before(async () => {
      pgDb = await createPgDatabase();
      store = await openStore(pgDb.url, { logger, clock: new ManualClock() });
    });
    after(async () => {
      await store.close();
      await pgDb.drop();
    });

    test('an idle pool connection killed by the server is logged once, and the next query still works', async () => {
      await sql`select 1`.execute(store.db); // leaves one idle connection in the pool
      assert.ok((await terminateSessions(pgDb.url)) >= 1);
      await poll(() => logger.lines.some((l) => l.source === 'postgres-pool'));
      const line = logger.lines.find((l) => l.source === 'postgres-pool')!;
      assert.ok(line.err instanceof Error, 'the line carries the error');
      await sql`select 1`.execute(store.db);
      assert.equal(logger.lines.filter((l) => l.source === 'postgres-pool').length, 1);
    });

    test('a LISTEN connection killed by the server is logged, and listening resumes', async () => {
      const signal = new AbortController();
      let heard = 0;
      const notifications = store.notifications;
      assert.ok(notifications, 'PostgreSQL stores have notifications');
      notifications.listen('house_test', () => heard++, signal.signal);
      try {
        await poll(() => heard === 1); // once after connecting
        await terminateSessions(pgDb.url, `query like 'LISTEN%'`);
        await poll(() => logger.lines.some((l) => l.source === 'postgres-listen:house_test'));
        await poll(() => heard === 2, 40_000); // once more after reconnecting
        await store.write((trx) => notifications.notify(trx, 'house_test'));
        await poll(() => heard === 3);
      } finally {
        signal.abort();
      }
    });
  });
}

describe('a heartbeat nudge the store cannot answer is said, not dropped', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muster-nudge-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('the nudge failure reaches the log', async () => {
    const store = await openStore(`sqlite:${join(dir, 'muster.db')}`);
    await store.close(); // every query now fails, as a broken store's would
    const failures: unknown[] = [];
    const watcher = new StatusWatcher({
      db: store.db,
      write: store.write,
      nudgeFailed: (err) => failures.push(err),
      nodes: { list: async () => ({ items: [], nextCursor: null }), views: async () => [] },
      events: { append: async () => undefined as never },
      clock: new ManualClock(),
      debounceMs: 15_000,
    });
    watcher.nudge(['n-1']);
    await poll(() => failures.length === 1);
    assert.ok(failures[0] instanceof Error);
  });
});
