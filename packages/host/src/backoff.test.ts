import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { backoffDelay, backoffWindow } from './backoff.js';

/** A seeded generator, so the spread below is the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

test('every delay lies in [0, window), the window being base·2^n capped', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 80 }),
      fc.integer({ min: 1, max: 10_000 }),
      fc.integer({ min: 1, max: 600_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (attempt, base, cap, r) => {
        const window = backoffWindow(attempt, base, cap);
        assert.equal(window, Math.min(cap, base * 2 ** Math.min(attempt, 30)));
        const delay = backoffDelay(attempt, base, cap, () => r);
        assert.ok(delay >= 0 && delay < Math.max(1, window), `${delay} outside [0, ${window})`);
      },
    ),
  );
});

test('the cap bounds the window before the jitter: past the cap a delay is still uniform over [0, cap)', () => {
  // Jitter first and cap after (min(cap, random·base·2^n)) would put nearly every delay at the cap.
  fc.assert(
    fc.property(
      fc.integer({ min: 7, max: 80 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (attempt, r) => {
        assert.equal(
          backoffDelay(attempt, 1000, 60_000, () => r),
          Math.floor(r * 60_000),
        );
      },
    ),
  );
});

test('a fleet failing together spreads over the whole window: no herd at the cap or anywhere else', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 1, max: 40 }), (seed, attempt) => {
      const random = seeded(seed);
      const window = backoffWindow(attempt, 1000, 60_000);
      const delays = Array.from({ length: 2000 }, () => backoffDelay(attempt, 1000, 60_000, random));
      const deciles = new Array<number>(10).fill(0);
      for (const d of delays) deciles[Math.min(9, Math.floor((d / window) * 10))]!++;
      // 200 expected per tenth of the window; a herd would leave most tenths empty.
      for (const count of deciles) assert.ok(count > 120 && count < 280, `deciles ${deciles.join(' ')}`);
      const atCap = delays.filter((d) => d >= window * 0.99).length;
      assert.ok(atCap < 60, `${atCap} of 2000 delays at the cap`);
    }),
    { numRuns: 50 },
  );
});
