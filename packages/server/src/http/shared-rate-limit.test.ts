import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ManualClock } from '../clock.js';
import { openStore, type Store } from '../store/db.js';
import { createPgDatabase, dialects } from '../testing/harness.js';
import { RateLimiter } from './rate-limit.js';
import { limitsFor } from './shared-rate-limit.js';

const noSweepError = (err: unknown) => assert.fail(`sweeping failed: ${String(err)}`);

/** Two replicas' stores on one fresh PostgreSQL database, and a clock they share. */
async function twoReplicas(): Promise<{ a: Store; b: Store; clock: ManualClock; close(): Promise<void> }> {
  const pgDb = await createPgDatabase();
  const a = await openStore(pgDb.url);
  const b = await openStore(pgDb.url);
  return {
    a,
    b,
    clock: new ManualClock(Date.now()),
    async close() {
      await a.close();
      await b.close();
      await pgDb.drop();
    },
  };
}

test('one process on SQLite keeps its buckets in memory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'muster-limits-'));
  const store = await openStore(`sqlite:${join(dir, 'muster.db')}`);
  try {
    const limiter = limitsFor(store, new ManualClock(), noSweepError)('enroll', 1, 2);
    assert.ok(limiter instanceof RateLimiter);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

// PostgreSQL joins wherever MUSTER_TEST_PG_URL is set, as in every store test (see dialects()).
if (dialects().includes('postgres'))
  describe('rate limits shared by replicas on PostgreSQL', () => {
    test('a burst spent half on each replica is spent for both, and refills at the rate', async () => {
      const { a, b, clock, close } = await twoReplicas();
      try {
        const onA = limitsFor(a, clock, noSweepError)('enroll', 0.5, 4);
        const onB = limitsFor(b, clock, noSweepError)('enroll', 0.5, 4);
        assert.equal(await onA.take('10.0.0.1'), 0);
        assert.equal(await onB.take('10.0.0.1'), 0);
        assert.equal(await onA.take('10.0.0.1'), 0);
        assert.equal(await onB.take('10.0.0.1'), 0);
        assert.equal(await onA.take('10.0.0.1'), 2, 'the fifth is refused, one token back in 2 s');
        assert.equal(await onB.take('10.0.0.1'), 2, 'on the other replica as well');
        assert.equal(await onB.take('10.0.0.2'), 0, 'another key has its own bucket');
        const other = limitsFor(b, clock, noSweepError)('renew', 0.5, 4);
        assert.equal(await other.take('10.0.0.1'), 0, 'another limit has its own bucket for the same key');
        clock.advance(2_000);
        assert.equal(await onB.take('10.0.0.1'), 0, 'refilled by one');
        assert.equal(await onA.take('10.0.0.1'), 2);
      } finally {
        await close();
      }
    });

    test('takes that race on both replicas grant exactly the burst', async () => {
      const { a, b, clock, close } = await twoReplicas();
      try {
        const limiters = [a, b].map((s) => limitsFor(s, clock, noSweepError)('channel', 1, 10));
        const waits = await Promise.all(
          Array.from({ length: 40 }, (_, i) => limiters[i % 2]!.take('node-1')),
        );
        assert.equal(waits.filter((w) => w === 0).length, 10);
        assert.ok(waits.every((w) => w === 0 || w >= 1));
      } finally {
        await close();
      }
    });

    test('a clock stepped back refills nothing and drains nothing', async () => {
      const { a, b, clock, close } = await twoReplicas();
      try {
        const onA = limitsFor(a, clock, noSweepError)('renew', 1, 2);
        const onB = limitsFor(b, clock, noSweepError)('renew', 1, 2);
        assert.equal(await onA.take('n'), 0);
        clock.set(clock.now() - 60_000);
        assert.equal(await onB.take('n'), 0, 'the one token left is still there');
        assert.equal(await onB.take('n'), 1, 'and none came back');
      } finally {
        await close();
      }
    });

    test('buckets that filled up again are swept from the store', async () => {
      const { a, clock, close } = await twoReplicas();
      try {
        const limits = limitsFor(a, clock, noSweepError);
        const limiter = limits('enroll', 1, 3);
        for (const key of ['x', 'y', 'z']) assert.equal(await limiter.take(key), 0);
        const count = async () =>
          (
            await a.db
              .selectFrom('rate_buckets')
              .select((e) => e.fn.countAll<number>().as('n'))
              .executeTakeFirstOrThrow()
          ).n;
        assert.equal(Number(await count()), 3);
        clock.advance(61_000);
        assert.equal(await limiter.take('x'), 0, 'the first take after a minute sweeps');
        for (let i = 0; i < 50 && Number(await count()) !== 1; i++)
          await new Promise((r) => setTimeout(r, 20));
        assert.equal(Number(await count()), 1, 'only the bucket just taken from is left');
      } finally {
        await close();
      }
    });
  });
