import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError } from '../errors.js';
import { decodeCursor, encodeCursor } from './cursor.js';

const nodePosition = (v: unknown) =>
  Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;

function rejected(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AppError);
    return `${err.status} ${err.code}: ${err.message}`;
  }
  return 'accepted';
}

test('cursors handed out by the earlier per-listing codecs still decode to the same position', () => {
  // Literal cursors as the nodes, commands and events listings encoded them before the merge.
  assert.deepEqual(decodeCursor('WyJ3ZWItMDEiLCIwMTkwZDFmMi1hYWFhIl0', nodePosition), [
    'web-01',
    '0190d1f2-aaaa',
  ]);
  assert.deepEqual(
    decodeCursor('WzE3NjQ2MjAwMDAwMDAsImMtMSJd', (v) => v),
    [1764620000000, 'c-1'],
  );
  assert.deepEqual(
    decodeCursor('eyJiZWZvcmUiOjQyfQ', (v) => v),
    { before: 42 },
  );
  assert.equal(encodeCursor(['web-01', '0190d1f2-aaaa']), 'WyJ3ZWItMDEiLCIwMTkwZDFmMi1hYWFhIl0');
  assert.equal(encodeCursor({ before: 42 }), 'eyJiZWZvcmUiOjQyfQ');
});

test('every bad cursor gets the same one 400 answer', () => {
  const answer = '400 bad_cursor: cursor is not one this server handed out';
  const good = encodeCursor(['a', 'b']);
  for (const bad of [
    'AAAA', // not JSON
    '!!!', // not base64url
    `${good}=`, // padded: not the text this server hands out
    Buffer.from('[ "a", "b" ]').toString('base64url'), // re-spelt JSON
    encodeCursor(['a', 1]), // another listing's shape
    encodeCursor({ before: 3 }),
  ]) {
    assert.equal(
      rejected(() => decodeCursor(bad, nodePosition)),
      answer,
      bad,
    );
  }
});
