import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isNodeName, isProfile, MAX_LABELS, NODE_NAME_PATTERN, parseLabels } from './names.js';

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** The rule in words (CONTRACT section 4), written without a regular expression. */
function isDnsLabel(name: string): boolean {
  if (name.length < 1 || name.length > 63) return false;
  if (!ALNUM.includes(name[0]!) || !ALNUM.includes(name[name.length - 1]!)) return false;
  return [...name].every((c) => ALNUM.includes(c) || c === '-');
}

describe('node names', () => {
  test('the contract pattern is the one enforced', () => {
    assert.equal(NODE_NAME_PATTERN, '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$');
  });

  test('refuses the names an attacker or a typo would send', () => {
    for (const name of [
      '../x',
      'A',
      'a_b',
      'a'.repeat(64),
      '',
      'a\u0000b',
      'a\u202eb',
      '-a',
      'a-',
      'a.b',
      'a b',
      'a\n',
    ]) {
      assert.equal(isNodeName(name), false, JSON.stringify(name));
    }
    for (const value of [undefined, null, 42, ['a'], { toString: () => 'a' }])
      assert.equal(isNodeName(value), false);
  });

  test('accepts DNS labels up to 63 characters', () => {
    for (const name of ['a', '0', 'web-1', 'a--b', 'a'.repeat(63), '1-2-3'])
      assert.ok(isNodeName(name), name);
  });

  test('agrees with the rule in words on arbitrary strings', () => {
    const near = fc.string({
      unit: fc.constantFrom('a', 'z', '0', '9', '-', 'A', '_', '.', '/', '\u0000', '\u202e', 'é'),
      maxLength: 70,
    });
    fc.assert(
      fc.property(
        fc.oneof(near, fc.string({ maxLength: 70 })),
        (name) => isNodeName(name) === isDnsLabel(name),
      ),
    );
  });

  test('every generated DNS label is accepted', () => {
    const label = fc
      .tuple(
        fc.constantFrom(...ALNUM),
        fc.string({ unit: fc.constantFrom(...ALNUM, '-'), maxLength: 61 }),
        fc.constantFrom(...ALNUM),
      )
      .map(([a, mid, z]) => `${a}${mid}${z}`);
    fc.assert(fc.property(label, (name) => isNodeName(name)));
  });
});

describe('profiles', () => {
  test('allow dots and underscores inside, nothing risky anywhere', () => {
    for (const p of ['default', 'web', 'db.primary', 'a_b', 'x']) assert.ok(isProfile(p), p);
    for (const p of ['', 'Web', '.a', 'a.', '../x', 'a b', 'a/b', 'a'.repeat(65)])
      assert.ok(!isProfile(p), p);
  });
});

describe('parseLabels', () => {
  test('reads key=value pairs; the last of a repeated key wins', () => {
    assert.deepEqual(parseLabels(['zone=eu-1', 'team=ops', 'path=/srv/a:b']), {
      zone: 'eu-1',
      team: 'ops',
      path: '/srv/a:b',
    });
    assert.deepEqual(parseLabels(['empty=']), { empty: '' });
    assert.deepEqual(parseLabels(['k=v', 'k=w']), { k: 'w' });
  });

  test('names the first bad pair', () => {
    assert.throws(() => parseLabels(['novalue']), /label "novalue" is not of the form key=value/);
    assert.throws(() => parseLabels(['=v']), /not of the form key=value/);
    assert.throws(() => parseLabels(['Zone=a']), /label key "Zone"/);
    assert.throws(() => parseLabels(['zone=a b']), /label value "a b"/);
    assert.throws(() => parseLabels(['url=a=b']), /label value "a=b"/);
    assert.throws(() => parseLabels(['zone=a\u202eb']), /label value/);
  });

  test('refuses prototype keys and never touches Object.prototype', () => {
    assert.throws(() => parseLabels(['__proto__=x']), /label key "__proto__"/);
    const labels = parseLabels(['constructor=x', 'prototype=y']);
    assert.deepEqual(labels, { constructor: 'x', prototype: 'y' });
    assert.equal(Object.getPrototypeOf(labels), Object.prototype);
    assert.equal(({} as Record<string, unknown>).prototype, undefined);
  });

  test(`allows at most ${MAX_LABELS} labels`, () => {
    const pairs = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v`);
    assert.equal(Object.keys(parseLabels(pairs(MAX_LABELS))).length, MAX_LABELS);
    assert.throws(() => parseLabels(pairs(MAX_LABELS + 1)), /at most 32 labels/);
  });
});
