import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { adminTokenWeakness } from './auth.js';

describe('adminTokenWeakness', () => {
  test('refuses short, repetitive or unsendable tokens and says why', () => {
    const cases: Array<[string, RegExp]> = [
      ['x', /1-character .* about 5 bits .* at least 128/],
      ['hunter2', /7-character single-case alphanumeric token carries about 36 bits/],
      ['correct-horse-battery', /21-character base64url token carries about 126 bits/],
      ['0123456789abcdef0123456789abcde', /31-character hex token carries about 124 bits/],
      ['1'.repeat(39).replace(/^1/, '9'), /2 distinct characters/],
      ['a'.repeat(64), /1 distinct characters/],
      ['abab'.repeat(16), /2 distinct characters/],
      ['two words'.repeat(8), /spaces or characters outside printable ASCII/],
      ['tökén'.repeat(10), /outside printable ASCII/],
    ];
    for (const [token, reason] of cases) assert.match(adminTokenWeakness(token) ?? 'accepted', reason, token);
  });

  test('accepts what the server makes and what openssl rand gives', () => {
    assert.equal(adminTokenWeakness(`mat_${randomBytes(32).toString('base64url')}`), undefined);
    assert.equal(adminTokenWeakness(randomBytes(32).toString('base64')), undefined);
    assert.equal(adminTokenWeakness(randomBytes(16).toString('hex')), undefined, '128 bits of hex');
  });

  // From 24 bytes on, a draw that happens to fall in a smaller alphabet (hex of digits only)
  // still carries 128 bits by that alphabet's measure, so every draw must pass.
  test('any random token of 24 bytes or more, hex or base64url, is accepted', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 24, maxLength: 64 }), fc.boolean(), (bytes, hex) => {
        const token = Buffer.from(bytes).toString(hex ? 'hex' : 'base64url');
        assert.equal(adminTokenWeakness(token), undefined, token);
      }),
    );
  });
});
