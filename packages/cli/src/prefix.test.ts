import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '@muster/host';
import { uniqueId } from './prefix.js';

const IDS = ['7f3a90c1-aaaa', '7f3a1b22-bbbb', '0c44d2e0-cccc'];

test('a whole id, or a prefix of exactly one, is that id', () => {
  assert.equal(uniqueId('0c44d2e0-cccc', IDS, 'token'), '0c44d2e0-cccc');
  assert.equal(uniqueId('0c44', IDS, 'token'), '0c44d2e0-cccc');
  assert.equal(uniqueId('7f3a9', IDS, 'token'), '7f3a90c1-aaaa');
});

test('a prefix of several is a usage error naming them; of none, a failure; too short, a usage error', () => {
  assert.throws(
    () => uniqueId('7f3a', IDS, 'token'),
    (err: Error) =>
      err instanceof UsageError &&
      err.message ===
        '"7f3a" is the start of several token ids: 7f3a1b22-bbbb, 7f3a90c1-aaaa; give more of it',
  );
  assert.throws(
    () => uniqueId('ffff', IDS, 'token'),
    (err: Error) => !(err instanceof UsageError) && err.message === 'no token ffff',
  );
  assert.throws(() => uniqueId('7f3', IDS, 'token'), UsageError);
});
