import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AppError } from '../errors.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH, parseJsonBody } from './json.js';

/** How deeply a parsed value nests: a scalar is 0, `[]` and `{}` are 1. */
function depthOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf));
  if (value !== null && typeof value === 'object')
    return 1 + Math.max(0, ...Object.values(value).map(depthOf));
  return 0;
}

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

function refusedAs(code: string) {
  return (err: unknown) => err instanceof AppError && err.status === 400 && err.code === code;
}

describe('jsonDepthExceeds', () => {
  test('agrees with the depth of the parsed document, whatever the strings hold', () => {
    // Strings full of brackets, quotes and backslashes are what a naive scanner gets wrong.
    const tricky = fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', 'a', ' ', '\u2028') });
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        tricky,
        fc.integer(),
        fc.constant(null),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(tricky, tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 12 }), fc.constantFrom(0, 2), (doc, limit, indent) => {
        const text = JSON.stringify(doc, null, indent);
        assert.equal(jsonDepthExceeds(text, limit), depthOf(doc) > limit);
      }),
      { numRuns: 500 },
    );
  });

  test('agrees with fast-check JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 0, max: 8 }), (doc, limit) => {
        assert.equal(jsonDepthExceeds(JSON.stringify(doc), limit), depthOf(doc) > limit);
      }),
    );
  });

  test('counts to the limit exactly', () => {
    assert.equal(jsonDepthExceeds(nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH), false);
    assert.equal(jsonDepthExceeds(nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH), true);
    assert.equal(jsonDepthExceeds('{"a":{"b":[1]}}', 3), false);
    assert.equal(jsonDepthExceeds('{"a":{"b":[1]}}', 2), true);
  });
});

describe('parseJsonBody', () => {
  test('parses ordinary JSON', () => {
    assert.deepEqual(parseJsonBody('{"a":[1,"x",null,true]}'), { a: [1, 'x', null, true] });
  });

  test('refuses 10,000 levels of nesting without parsing them', () => {
    assert.throws(() => parseJsonBody(nested(10_000)), refusedAs('malformed_json'));
    assert.throws(
      () => parseJsonBody(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`),
      refusedAs('malformed_json'),
    );
    assert.deepEqual(parseJsonBody(nested(MAX_JSON_DEPTH)), JSON.parse(nested(MAX_JSON_DEPTH)));
  });

  test('refuses malformed and empty bodies with a 400', () => {
    for (const text of ['', '{', '{"a":}', "{'a':1}", '[1,]', 'NaN', '{"a":1}x', '\u0000']) {
      assert.throws(() => parseJsonBody(text), refusedAs('malformed_json'), JSON.stringify(text));
    }
  });

  test('drops __proto__ and constructor.prototype keys, at any depth', () => {
    const parsed = parseJsonBody(
      '{"__proto__":{"isAdmin":true},"a":{"__proto__":{"x":1},"constructor":{"prototype":{"y":2}},"b":1}}',
    ) as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(parsed), ['a']);
    assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
    assert.equal((parsed as { isAdmin?: unknown }).isAdmin, undefined);
    assert.deepEqual(parsed.a, { b: 1 });
    assert.equal(({} as { isAdmin?: unknown; x?: unknown }).isAdmin, undefined);
    assert.equal(({} as { y?: unknown }).y, undefined);
  });

  test('never pollutes Object.prototype, whatever the keys', () => {
    const key = fc.constantFrom('__proto__', 'constructor', 'prototype', 'a', 'toString');
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, fc.boolean(), fc.dictionary(key, tie('node'), { maxKeys: 3 })),
    })).node;
    const ownProtoKeys = (v: unknown): number =>
      v !== null && typeof v === 'object'
        ? Number(Object.hasOwn(v, '__proto__')) +
          Object.values(v).reduce((n: number, child) => n + ownProtoKeys(child), 0)
        : 0;
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    fc.assert(
      fc.property(value, (doc) => {
        const parsed = parseJsonBody(JSON.stringify(doc).replaceAll('"a"', '"__proto__"'));
        assert.equal(ownProtoKeys(parsed), 0);
        assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before);
      }),
    );
  });
});
