import { type Kysely, sql } from 'kysely';
import type { Clock } from '../clock.js';
import type { Store } from '../store/db.js';
import type { Schema } from '../store/schema.js';
import { type Limiter, type LimiterFactory, RateLimiter } from './rate-limit.js';

/** How often a process deletes the buckets that have filled up again (any replica's). */
const SWEEP_MS = 60_000;

/**
 * The limits of a control plane. Where replicas share the store (PostgreSQL) every bucket is a
 * row there, taken from in one statement, so a limit holds for the fleet and not per replica;
 * a refusal is remembered here until the bucket holds a token again, so a flood from a limited
 * key costs no statement at all. Where one process is the whole control plane (SQLite), the
 * buckets live in memory.
 */
export function limitsFor(
  store: Pick<Store, 'db' | 'notifications'>,
  clock: Clock,
  onSweepError: (err: unknown) => void,
): LimiterFactory {
  if (!store.notifications) return (_scope, perSecond, burst) => new RateLimiter(clock, perSecond, burst);
  let sweptAt = clock.now();
  const sweep = (now: number) => {
    if (now - sweptAt < SWEEP_MS) return;
    sweptAt = now;
    store.db.deleteFrom('rate_buckets').where('full_at', '<', now).execute().catch(onSweepError);
  };
  return (scope, perSecond, burst) =>
    new SharedRateLimiter({ db: store.db, clock, scope, perSecond, burst, sweep });
}

/** A token bucket per key in the shared store; the same answers as `RateLimiter`, for the fleet. */
export class SharedRateLimiter implements Limiter {
  /** Keys refused until then (ms): no token can have come back before, whatever any replica did. */
  private readonly refusedUntil = new Map<string, number>();

  constructor(
    private readonly deps: {
      db: Kysely<Schema>;
      clock: Clock;
      scope: string;
      perSecond: number;
      burst: number;
      sweep: (now: number) => void;
    },
  ) {}

  async take(key: string): Promise<number> {
    const { clock, perSecond } = this.deps;
    const now = clock.now();
    const until = this.refusedUntil.get(key);
    if (until !== undefined) {
      if (now < until) return Math.max(1, Math.ceil((until - now) / 1000));
      this.refusedUntil.delete(key);
    }
    this.deps.sweep(now);
    const { tokens, granted } = await this.takeRow(key, now);
    if (granted === 1) return 0;
    const waitMs = Math.ceil(((1 - tokens) / perSecond) * 1000);
    this.refusedUntil.set(key, now + waitMs);
    if (this.refusedUntil.size > 10_000) this.forget(now);
    return Math.max(1, Math.ceil((1 - tokens) / perSecond));
  }

  /**
   * One statement, atomic under concurrency: refills the row for the time since it was last
   * taken from (never for a clock stepped back), takes a token if there is one, and says so.
   */
  private async takeRow(key: string, now: number): Promise<{ tokens: number; granted: number }> {
    const { db, scope, burst } = this.deps;
    const perMs = this.deps.perSecond / 1000;
    const result = await sql<{ tokens: number; granted: number }>`
      insert into rate_buckets as b (scope, key, tokens, at, full_at, granted)
      values (${scope}, ${key}, ${burst - 1}, ${now}, ${now + Math.ceil(1 / perMs)}, 1)
      on conflict (scope, key) do update set (tokens, at, full_at, granted) = (
        select n, greatest(b.at, ${now}::bigint),
          greatest(b.at, ${now}::bigint) + ceil((${burst}::float8 - n) / ${perMs}::float8)::bigint, (t >= 1)::int
        from (
          select t, case when t >= 1 then t - 1 else t end as n
          from (select least(${burst}::float8,
            b.tokens + greatest(0, ${now}::bigint - b.at) * ${perMs}::float8) as t) refilled
        ) taken
      )
      returning tokens, granted`.execute(db);
    return result.rows[0]!;
  }

  private forget(now: number): void {
    for (const [key, until] of this.refusedUntil) if (until <= now) this.refusedUntil.delete(key);
  }
}
