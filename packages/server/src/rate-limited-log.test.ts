import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from './clock.js';
import { LOG_EVERY_MS, rateLimitedLog } from './rate-limited-log.js';

/** A logger that keeps what it was told. */
function capture(): { lines: Array<Record<string, unknown>>; warn(obj: object, msg?: string): void } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, warn: (obj, msg) => void lines.push({ ...obj, msg }) };
}

test('a failing source writes one line a minute, and the next line counts the ones left out', () => {
  const clock = new ManualClock();
  const logger = capture();
  const log = rateLimitedLog(logger, 'postgres-pool', 'lost a PostgreSQL connection', clock);
  const first = new Error('terminating connection due to administrator command');
  log(first);
  assert.equal(logger.lines.length, 1, 'the first error is said at once');
  assert.equal(logger.lines[0]!.err, first);
  assert.equal(logger.lines[0]!.source, 'postgres-pool');
  assert.equal(logger.lines[0]!.suppressed, 0);
  for (let i = 0; i < 5; i++) {
    clock.advance(10_000);
    log(new Error('again'));
  }
  assert.equal(logger.lines.length, 1, 'five more within the minute are only counted');
  clock.advance(LOG_EVERY_MS);
  log(new Error('still'));
  assert.equal(logger.lines.length, 2);
  assert.equal(logger.lines[1]!.suppressed, 5);
});

test('each source has its own minute', () => {
  const clock = new ManualClock();
  const logger = capture();
  const pool = rateLimitedLog(logger, 'postgres-pool', 'lost a PostgreSQL connection', clock);
  const nudge = rateLimitedLog(logger, 'status-nudge', 'could not check the nodes', clock);
  pool(new Error('a'));
  nudge(new Error('b'));
  pool(new Error('c'));
  assert.deepEqual(
    logger.lines.map((l) => l.source),
    ['postgres-pool', 'status-nudge'],
  );
});
