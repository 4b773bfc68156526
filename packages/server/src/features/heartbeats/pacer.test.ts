import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../clock.js';
import { HeartbeatPacer } from './pacer.js';

test('intervals stretch so the fleet stays under the total rate, and never shrink below the configured one', () => {
  const pacer = new HeartbeatPacer(10_000, 1000, new ManualClock());
  pacer.update(5_000);
  assert.equal(pacer.intervalMs(), 10_000, '5,000 nodes at 10 s is 500/s: under the limit');
  pacer.update(25_000);
  assert.equal(pacer.intervalMs(), 25_000, '25,000 nodes at 1,000/s need 25 s');
  pacer.update(25_001);
  assert.equal(pacer.intervalMs(), 26_000, 'whole seconds, rounded up');
  const totalRate = 25_001 / (pacer.intervalMs() / 1000);
  assert.ok(totalRate <= 1000);
});

test('after the interval shrinks, silence is still measured against the longer one for one old interval', () => {
  const clock = new ManualClock();
  const pacer = new HeartbeatPacer(10_000, 100, clock);
  pacer.update(6_000);
  assert.equal(pacer.intervalMs(), 60_000);
  clock.advance(120_000);
  pacer.update(100);
  assert.equal(pacer.intervalMs(), 10_000, 'agents are told the shorter interval at once');
  assert.equal(pacer.stalenessIntervalMs(), 60_000, 'but some may not have heard it yet');
  clock.advance(60_000);
  assert.equal(pacer.stalenessIntervalMs(), 10_000);
});
