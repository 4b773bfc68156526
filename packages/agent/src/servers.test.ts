import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Log } from '@muster/host';
import { ServerList } from './servers.js';

function recorder(): { log: Log; lines: Array<{ msg: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
  const push = (msg: string, fields?: Record<string, unknown>) =>
    lines.push({ msg, ...(fields ? { fields } : {}) });
  return { lines, log: { error: push, warn: push, info: push, debug: push } };
}

const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

test('the agent stays with a server that works, moves on at once when it fails, and backs off only after a full round', () => {
  const { log, lines } = recorder();
  let now = 0;
  const [a, b] = [new URL('https://a.test:8443'), new URL('https://b.test:8443')];
  const list = new ServerList(
    [a, b],
    log,
    () => 0.5,
    () => now,
  );
  list.succeeded(a);
  assert.equal(list.current(), a);

  assert.equal(list.failed(a, refused), 125, 'the next server is tried after a moment');
  assert.equal(list.current(), b);
  assert.equal(lines.at(-1)?.msg, 'cannot reach the control plane at https://a.test:8443');
  assert.equal(lines.at(-1)?.fields?.next, 'https://b.test:8443');

  // Every server failed in a row: a backoff step of half the 2 s window (random 0.5).
  assert.equal(list.failed(b, refused), 1000);
  assert.equal(lines.at(-1)?.fields?.backoffWindowMs, 2000);
  assert.equal(list.current(), a, 'back to the first of the list');

  // Another caller failing at a server the list has left waits out the same step, unlogged.
  const logged = lines.length;
  now = 400;
  assert.equal(list.failed(b, refused), 600);
  assert.equal(list.current(), a);
  assert.equal(lines.length, logged);

  // The next round backs off twice as long; a success ends it.
  now = 1000;
  list.failed(a, refused);
  assert.equal(list.failed(b, refused), 2000);
  assert.equal(lines.at(-1)?.fields?.backoffWindowMs, 4000);
  list.succeeded(a);
  assert.equal(lines.at(-1)?.msg, 'reaching the control plane again');
  assert.equal(list.failed(a, refused), 125, 'after a success the first failure is a skip again');
  assert.equal(list.current(), b);
  list.succeeded(b);
  assert.equal(list.current(), b, 'and the agent stays with the server that works');
});
