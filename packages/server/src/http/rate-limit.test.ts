import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../clock.js';
import { RateLimiter } from './rate-limit.js';

describe('RateLimiter', () => {
  test('allows a burst, then asks the caller to wait, then refills with time', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, 2, 10);
    for (let i = 0; i < 10; i++) assert.equal(limiter.take('10.0.0.1'), 0);
    assert.equal(limiter.take('10.0.0.1'), 1);
    clock.advance(499);
    assert.equal(limiter.take('10.0.0.1'), 1, 'just under one token refilled');
    clock.advance(1);
    assert.equal(limiter.take('10.0.0.1'), 0);
    assert.equal(limiter.take('10.0.0.1'), 1);
  });

  test('says how many whole seconds to wait when the rate is below one per second', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, 0.1, 1);
    assert.equal(limiter.take('a'), 0);
    assert.equal(limiter.take('a'), 10);
    clock.advance(5000);
    assert.equal(limiter.take('a'), 5);
  });

  test('a clock stepped back by an hour neither refills nor locks the address out', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, 1, 2);
    assert.equal(limiter.take('a'), 0);
    clock.advance(-3_600_000);
    assert.equal(limiter.take('a'), 0, 'the token left is still there');
    assert.equal(limiter.take('a'), 1, 'and none was added');
    clock.advance(1000);
    assert.equal(limiter.take('a'), 0);
  });

  test('keeps one bucket per source address', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, 1, 1);
    assert.equal(limiter.take('a'), 0);
    assert.ok(limiter.take('a') > 0);
    assert.equal(limiter.take('b'), 0);
  });

  test('a refill never exceeds the burst, however long the wait', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, 5, 3);
    clock.advance(3_600_000);
    for (let i = 0; i < 3; i++) assert.equal(limiter.take('a'), 0);
    assert.ok(limiter.take('a') > 0);
  });

  test('forgetting refilled buckets in a flood of addresses changes no answer', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, 1, 2);
    assert.equal(limiter.take('busy'), 0);
    assert.equal(limiter.take('busy'), 0);
    for (let i = 0; i < 10_001; i++) limiter.take(`flood-${i}`);
    assert.ok(limiter.take('busy') > 0, 'a drained bucket is not forgotten');
    clock.advance(2000);
    for (let i = 0; i < 10_001; i++) limiter.take(`again-${i}`);
    assert.equal(limiter.take('busy'), 0);
  });

  test('never allows more than the burst plus the rate times the time passed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 })), { maxLength: 300 }),
        (rate, burst, steps) => {
          const clock = new ManualClock();
          const limiter = new RateLimiter(clock, rate, burst);
          let allowed = 0;
          let elapsedMs = 0;
          for (const step of steps) {
            clock.advance(step);
            elapsedMs += step;
            if (limiter.take('k') === 0) allowed++;
            assert.ok(allowed <= burst + (rate * elapsedMs) / 1000 + 1e-9);
          }
        },
      ),
    );
  });
});
