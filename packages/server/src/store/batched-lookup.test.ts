import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchedLookup } from './batched-lookup.js';

test('lookups made together share one fetch, and each caller gets its own answer', async () => {
  const fetches: string[][] = [];
  const lookup = new BatchedLookup<string, number>(async (keys) => {
    fetches.push(keys);
    return new Map(keys.filter((k) => k !== 'missing').map((k) => [k, k.length]));
  });
  const answers = await Promise.all(['a', 'bb', 'a', 'missing', 'ccc'].map((k) => lookup.get(k)));
  assert.deepEqual(answers, [1, 2, 1, undefined, 3]);
  assert.deepEqual(fetches, [['a', 'bb', 'missing', 'ccc']]);
  assert.equal(await lookup.get('dddd'), 4);
  assert.equal(fetches.length, 2, 'a later lookup reads the store again');
});

test('a failed fetch fails every caller in it, and the next lookup tries again', async () => {
  let fail = true;
  const lookup = new BatchedLookup<string, string>(async (keys) => {
    if (fail) throw new Error('store down');
    return new Map(keys.map((k) => [k, k]));
  }, 2);
  const results = await Promise.allSettled(['a', 'b', 'c'].map((k) => lookup.get(k)));
  assert.ok(results.every((r) => r.status === 'rejected'));
  fail = false;
  assert.equal(await lookup.get('a'), 'a');
});
