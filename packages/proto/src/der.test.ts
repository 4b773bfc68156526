import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { childrenOf, oid, readNode, readOid, sequence, time, tlv, unsignedInteger } from './der.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

test('object identifiers encode as X.690 says (known answers)', () => {
  assert.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302'); // ecdsa-with-SHA256
  assert.equal(hex(oid('2.5.29.17')), '0603551d11'); // subjectAltName
  assert.equal(hex(oid('1.3.6.1.5.5.7.3.2')), '06082b06010505070302'); // clientAuth
});

test('lengths switch to the long form at 128 bytes', () => {
  assert.equal(hex(tlv(0x04, new Uint8Array(127))).slice(0, 4), '047f');
  assert.equal(hex(tlv(0x04, new Uint8Array(128))).slice(0, 6), '048180');
  assert.equal(hex(tlv(0x04, new Uint8Array(70_000))).slice(0, 10), '0483011170');
});

test('integers stay positive and minimal', () => {
  assert.equal(hex(unsignedInteger(Uint8Array.of(0x7f))), '02017f');
  assert.equal(hex(unsignedInteger(Uint8Array.of(0x80))), '02020080');
  assert.equal(hex(unsignedInteger(Uint8Array.of(0, 0, 0x05))), '020105');
  assert.equal(hex(unsignedInteger(Uint8Array.of(0))), '020100');
});

test('times are UTCTime before 2050 and GeneralizedTime from 2050', () => {
  assert.equal(
    Buffer.from(time(new Date('2026-11-22T05:06:07.890Z')))
      .subarray(2)
      .toString(),
    '261122050607Z',
  );
  assert.equal(time(new Date('2026-01-01T00:00:00Z'))[0], 0x17);
  assert.equal(
    Buffer.from(time(new Date('2051-02-03T04:05:06Z')))
      .subarray(2)
      .toString(),
    '20510203040506Z',
  );
  assert.equal(time(new Date('2051-02-03T04:05:06Z'))[0], 0x18);
});

test('what is written reads back: any content, any length, nested', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 40 }), (a, b) => {
      const inner = [tlv(0x04, a), tlv(0x04, b)];
      const outer = sequence(...inner);
      const node = readNode(outer);
      assert.equal(node.end, outer.length);
      const kids = childrenOf(outer, node);
      assert.equal(kids.length, 2);
      assert.deepEqual(outer.subarray(kids[0]!.contentStart, kids[0]!.end), a);
      assert.deepEqual(outer.subarray(kids[1]!.contentStart, kids[1]!.end), b);
    }),
  );
});

test('object identifiers read back', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 0, max: 39 }),
      fc.array(fc.integer({ min: 0, max: 2 ** 31 }), { maxLength: 8 }),
      (a, b, rest) => {
        const dotted = [a, b, ...rest].join('.');
        const bytes = oid(dotted);
        assert.equal(readOid(bytes, readNode(bytes)), dotted);
      },
    ),
  );
});

test('truncated or overlong input is refused, never read past its end', () => {
  const good = sequence(tlv(0x04, new Uint8Array(200)));
  for (let cut = 0; cut < good.length; cut += 7) {
    assert.throws(() => childrenOf(good.subarray(0, cut), readNode(good.subarray(0, cut))), /malformed DER/);
  }
  assert.throws(() => readNode(Uint8Array.of(0x30, 0x81, 0x05, 0, 0, 0, 0, 0)), /non-minimal/);
  assert.throws(() => readNode(Uint8Array.of(0x30, 0x85, 1, 1, 1, 1, 1)), /unsupported length/);
});
