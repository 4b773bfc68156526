import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../clock.js';
import { RateLimitedError, UnauthorizedError } from '../errors.js';
import { FailedCredentials, RateLimiter, sourceOf } from './rate-limit.js';

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

describe('FailedCredentials', async () => {
  const refusal = new UnauthorizedError('wrong');
  const setUp = (perMinute: number) => {
    const clock = new ManualClock();
    const logged: Array<[string, number]> = [];
    const failures = new FailedCredentials({
      clock,
      perMinute,
      onLimited: (source, refused) => logged.push([source, refused]),
    });
    return { clock, logged, failures };
  };

  test('answers the refusal until the budget is spent, then a 429 saying how long to wait', async () => {
    const { failures } = setUp(30);
    for (let i = 0; i < 30; i++) assert.equal(await failures.refuse('10.0.0.1', refusal), refusal);
    const limited = await failures.refuse('10.0.0.1', refusal);
    assert.ok(limited instanceof RateLimitedError);
    assert.equal(limited.status, 429);
    assert.equal(limited.retryAfterSec, 2, 'one refusal back every two seconds at 30 a minute');
    assert.equal(await failures.refuse('10.0.0.2', refusal), refusal, 'another address has its own budget');
  });

  test('counts an IPv6 source by its /64, which one host holds whole, and a mapped IPv4 as itself', async () => {
    assert.equal(sourceOf('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:db8::5'), '2001:db8:0:0::/64');
    assert.equal(sourceOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(sourceOf('::1'), '0:0:0:0::/64');
    assert.equal(sourceOf('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(sourceOf('10.0.0.1'), '10.0.0.1');
    const { failures } = setUp(3);
    for (let i = 0; i < 3; i++) await failures.refuse(`2001:db8:1:2::${i + 1}`, refusal);
    assert.equal((await failures.refuse('2001:db8:1:2:ffff::9', refusal)).status, 429, 'the same /64');
    assert.equal(
      await failures.refuse('2001:db8:1:3::1', refusal),
      refusal,
      'the next /64 is another source',
    );
  });

  test('logs a limited source once per window, then with what it sent in the last one', async () => {
    const { clock, logged, failures } = setUp(5);
    for (let i = 0; i < 5; i++) await failures.refuse('a', refusal);
    for (let i = 0; i < 100; i++) await failures.refuse('a', refusal);
    assert.deepEqual(logged, [['a', 0]]);
    clock.advance(60_000);
    for (let i = 0; i < 20; i++) await failures.refuse('a', refusal);
    // The minute refilled five; the sixth of these twenty opens a new window.
    assert.deepEqual(logged, [
      ['a', 0],
      ['a', 100],
    ]);
    clock.advance(3_600_000);
    for (let i = 0; i < 6; i++) await failures.refuse('a', refusal);
    assert.deepEqual(logged.at(-1), ['a', 0], 'an hour later it is a new episode');
  });
});
