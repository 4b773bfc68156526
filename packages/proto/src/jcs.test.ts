import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from './jcs.js';

test('RFC 8785 section 3.2.2 example: numbers, strings and literals', () => {
  const input = JSON.parse(
    '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
      '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
  );
  assert.equal(
    canonicalJson(input),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
      '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
});

test('RFC 8785 section 3.2.3 example: members sorted by UTF-16 code units', () => {
  const input = JSON.parse(
    '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh",' +
      '"1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}',
  );
  // Read the member names back in written order (JavaScript objects would move "1" first).
  const names = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":"/g)].map((m) =>
    JSON.parse(`"${m[1]}"`),
  );
  assert.deepEqual(names, ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
});

test('no whitespace, nested objects sorted, undefined members dropped, NaN refused', () => {
  assert.equal(
    canonicalJson({ b: [1, { d: 1, c: 2 }], a: 'x', u: undefined }),
    '{"a":"x","b":[1,{"c":2,"d":1}]}',
  );
  assert.throws(() => canonicalJson({ n: Number.NaN }), /NaN/);
  assert.throws(() => canonicalJson({ n: Number.POSITIVE_INFINITY }), /Infinity/);
  assert.throws(() => canonicalJson({ f: () => 1 }), /function/);
});
