import assert from 'node:assert/strict';
import { test } from 'node:test';
import { after, every, ManualClock } from './clock.js';

test('a manual clock runs its timers when ticked past them, once, in order; advance only moves time', () => {
  const clock = new ManualClock(0);
  const ran: string[] = [];
  after(clock, 5_000, () => ran.push('five'));
  after(clock, 1_000, () => ran.push('one'));
  const cancel = after(clock, 2_000, () => ran.push('cancelled'));
  cancel();
  clock.tick(999);
  assert.deepEqual(ran, []);
  clock.advance(10_000);
  assert.deepEqual(ran, [], 'advance moves the time and runs nothing');
  clock.tick();
  assert.deepEqual(ran, ['one', 'five']);
  clock.tick(10_000);
  assert.deepEqual(ran, ['one', 'five'], 'a timer runs once');
});

test('a loop on the clock runs once per interval moved, never overlapping, until aborted', async () => {
  const clock = new ManualClock(0);
  const stop = new AbortController();
  let runs = 0;
  let running = 0;
  let overlapped = false;
  let release = () => {};
  every(
    clock,
    5_000,
    async () => {
      runs++;
      running++;
      if (running > 1) overlapped = true;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      running--;
    },
    stop.signal,
  );
  clock.tick(5_000);
  assert.equal(runs, 1);
  clock.tick(5_000); // the first run has not ended: the next is not due yet
  assert.equal(runs, 1);
  release();
  await new Promise((resolve) => setImmediate(resolve));
  clock.tick(5_000);
  assert.equal(runs, 2);
  release();
  await new Promise((resolve) => setImmediate(resolve));
  stop.abort();
  clock.tick(60_000);
  assert.equal(runs, 2, 'an aborted loop runs no more');
  assert.equal(overlapped, false);
});
