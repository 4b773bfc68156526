import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { limitsFor, openStore, type Store, systemClock } from '@muster/server';
import { emit, progress, scratchDatabase } from './support.js';

export interface LimitsOptions {
  /** Takes per figure. */
  takes: number;
  /** Takes in flight at once for the concurrent figure. */
  concurrency: number;
  /** A PostgreSQL URL for the shared limiter; without one only the in-memory figure is taken. */
  db?: string;
}

type Take = (key: string) => number | Promise<number>;

/** Microseconds per take, one after another, and takes per second with `concurrency` in flight. */
async function measure(take: Take, keys: (i: number) => string, opts: LimitsOptions) {
  let start = process.hrtime.bigint();
  for (let i = 0; i < opts.takes; i++) await take(keys(i));
  const serialUs = Number(process.hrtime.bigint() - start) / 1000 / opts.takes;
  start = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < opts.takes) await take(keys(opts.takes + next++));
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const perSec = opts.takes / (Number(process.hrtime.bigint() - start) / 1e9);
  return { serialUs, perSec };
}

/**
 * The cost of one rate-limit check: the in-memory bucket SQLite runs, beside the bucket row in
 * PostgreSQL that replicas share (a granted take is one statement; a refused key is answered
 * from memory until its bucket holds a token again, so a flood costs what the in-memory one does).
 */
export async function limitsScenario(opts: LimitsOptions): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'muster-bench-limits-'));
  const sqlite = await openStore(`sqlite:${join(dir, 'muster.db')}`);
  let pg: Store | undefined;
  let scratch: Awaited<ReturnType<typeof scratchDatabase>> | undefined;
  try {
    const fail = (err: unknown) => {
      throw err;
    };
    const local = limitsFor(sqlite, systemClock, fail)('bench', 1e9, 1e9);
    const inMemory = await measure(
      (k) => local.take(k),
      (i) => `k${i % 1000}`,
      opts,
    );
    emit('limits', 'in_memory_take_us', inMemory.serialUs, { unit: 'µs per check, one after another' });
    emit('limits', 'in_memory_takes_per_sec', inMemory.perSec, {
      unit: `checks/s, ${opts.concurrency} in flight`,
    });
    if (!opts.db) return;
    // A scratch database, made and dropped, as the other scenarios do.
    scratch = await scratchDatabase(opts.db);
    pg = await openStore(scratch.url);
    const run = 'bench';
    const store = pg;
    const floor = await measure(
      async () => {
        await store.ping();
        return 0;
      },
      String,
      opts,
    );
    emit('limits', 'postgres_ping_us', floor.serialUs, {
      unit: 'µs per round trip, the floor, same run',
    });
    progress('PostgreSQL: granted takes (one statement each)');
    const shared = limitsFor(pg, systemClock, fail)(run, 1e9, 1e9);
    const granted = await measure(
      (k) => shared.take(k),
      (i) => `k${i % 1000}`,
      opts,
    );
    emit('limits', 'postgres_granted_take_us', granted.serialUs, { unit: 'µs per check, one after another' });
    emit('limits', 'postgres_granted_takes_per_sec', granted.perSec, {
      unit: `checks/s, ${opts.concurrency} in flight`,
    });
    progress('PostgreSQL: a flood from one limited key');
    const tight = limitsFor(pg, systemClock, fail)(`${run}-flood`, 0.001, 1);
    const refused = await measure(
      (k) => tight.take(k),
      () => 'flooder',
      opts,
    );
    emit('limits', 'postgres_refused_take_us', refused.serialUs, { unit: 'µs per check of a limited key' });
    emit('limits', 'postgres_refused_takes_per_sec', refused.perSec, {
      unit: `checks/s, ${opts.concurrency} in flight`,
    });
  } finally {
    await pg?.close();
    await scratch?.drop();
    await sqlite.close();
    await rm(dir, { recursive: true, force: true });
  }
}
