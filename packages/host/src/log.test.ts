import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Log, rateLimitedWarn } from './log.js';

function capture() {
  const lines: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
  const warn: Log['warn'] = (msg, fields) => void lines.push({ msg, ...(fields ? { fields } : {}) });
  return { lines, warn };
}

test('a failing source is said once a minute, with how many were left out', () => {
  const log = capture();
  let now = 0;
  const failed = rateLimitedWarn(log, 'the channel failed', 60_000, () => now);
  failed(new Error('connect ECONNREFUSED'));
  for (let i = 0; i < 5; i++) {
    now += 1_000;
    failed(new Error('connect ECONNREFUSED'));
  }
  assert.equal(log.lines.length, 1);
  assert.deepEqual(log.lines[0], {
    msg: 'the channel failed',
    fields: { error: 'connect ECONNREFUSED', suppressed: 0 },
  });
  now = 60_000;
  failed('later');
  assert.equal(log.lines.length, 2);
  assert.deepEqual(log.lines[1]!.fields, { error: 'later', suppressed: 5 });
});
