import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { inclusionRanges, leafHash, rootOf } from './merkle.js';
import { checkpointBody, signNote, verifierKey } from './note.js';
import {
  checkpointSignedBy,
  leafHashWith,
  parseCheckpointNote,
  rootFromInclusionProofWith,
  sameBytes,
} from './web.js';

// The same WebCrypto the console uses, here through Node's implementation of it.
const { subtle } = globalThis.crypto;
const sha256 = async (data: Uint8Array) => new Uint8Array(await subtle.digest('SHA-256', data));
const ed25519 = async (raw: Uint8Array, signature: Uint8Array, message: Uint8Array) =>
  subtle.verify(
    'Ed25519',
    await subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']),
    signature,
    message,
  );

test('the browser inclusion check agrees with the RFC 6962 definition for every leaf of random trees', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 70 }), fc.nat(), async (size, pick) => {
      const entries = Array.from({ length: size }, (_, i) => `{"seq":${i}}`);
      const leaves = entries.map((e) => leafHash(e));
      const index = pick % size;
      const proof = inclusionRanges(index, size).map((r) => rootOf(leaves.slice(r.start, r.end)));
      const leaf = await leafHashWith(sha256, entries[index]!);
      assert.ok(sameBytes(leaf, leaves[index]!));
      const root = await rootFromInclusionProofWith(sha256, index, size, leaf, proof);
      assert.ok(root && sameBytes(root, rootOf(leaves)));
      // A different entry text at that position leads elsewhere.
      const forged = await leafHashWith(sha256, `${entries[index]} `);
      const other = await rootFromInclusionProofWith(sha256, index, size, forged, proof);
      assert.ok(!other || !sameBytes(other, rootOf(leaves)));
      // A proof cut short is malformed, not a root.
      if (proof.length > 0)
        assert.equal(await rootFromInclusionProofWith(sha256, index, size, leaf, proof.slice(1)), undefined);
    }),
    { numRuns: 60 },
  );
});

test('a checkpoint the server signed verifies in the browser form, and one with a changed size does not', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const origin = 'fleet.test/muster-ledger';
  const root = rootOf([leafHash('a'), leafHash('b')]);
  const note = signNote(checkpointBody({ origin, size: 2, root }), origin, privateKey, publicKey);
  const vkey = verifierKey(origin, publicKey);
  const parsed = parseCheckpointNote(note);
  assert.ok(parsed);
  assert.equal(parsed.size, 2);
  assert.ok(sameBytes(parsed.root, root));
  assert.equal(await checkpointSignedBy(sha256, ed25519, parsed, vkey), true);
  const tampered = parseCheckpointNote(note.replace('\n2\n', '\n3\n'));
  assert.ok(tampered);
  assert.equal(await checkpointSignedBy(sha256, ed25519, tampered, vkey), false);
  const { publicKey: otherKey } = generateKeyPairSync('ed25519');
  assert.equal(await checkpointSignedBy(sha256, ed25519, parsed, verifierKey(origin, otherKey)), false);
  assert.equal(parseCheckpointNote('not a note'), undefined);
});
