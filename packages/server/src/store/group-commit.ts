import { type Kysely, sql } from 'kysely';
import type { Schema } from './schema.js';

interface Unit {
  fn: (trx: Kysely<Schema>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for a store with a single writer (SQLite): units of work that arrive while a
 * transaction is being written join the next one, each inside its own savepoint. A unit that
 * fails is rolled back alone; the others commit together, with one fsync, and every caller is
 * answered only after the commit that holds its own work.
 */
export class GroupCommit {
  private queue: Unit[] = [];
  private draining = false;

  constructor(
    private readonly db: Kysely<Schema>,
    private readonly maxBatch = 256,
  ) {}

  run<T>(fn: (trx: Kysely<Schema>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    // Let the requests parsed in this turn of the event loop join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
      try {
        await this.db.transaction().execute(async (trx) => {
          for (const unit of batch) {
            await sql`savepoint unit`.execute(trx);
            try {
              const value = await unit.fn(trx);
              await sql`release savepoint unit`.execute(trx);
              outcomes.push({ ok: true, value });
            } catch (error) {
              await sql`rollback to savepoint unit`.execute(trx);
              await sql`release savepoint unit`.execute(trx);
              outcomes.push({ ok: false, error });
            }
          }
        });
      } catch (err) {
        for (const unit of batch) unit.reject(err);
        continue;
      }
      batch.forEach((unit, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) unit.resolve(outcome.value);
        else unit.reject(outcome.error);
      });
    }
    this.draining = false;
  }
}
