import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  completeSubtrees,
  consistencyRanges,
  EMPTY_ROOT,
  foldSubtrees,
  inclusionRanges,
  leafHash,
  nodeHash,
  RootBuilder,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

// transparency-dev/merkle's RFC 6962 vectors (Apache-2.0, LICENSE beside them).
const VECTORS = fileURLToPath(new URL('../../../test/fixtures/rfc6962/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : name.endsWith('.json') ? [path] : [];
  });
}
const b64 = (s: string | null | undefined) => Buffer.from(s ?? '', 'base64');

// ---- The RFC's definitions, written out naively, to check the real code against. ----
function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return EMPTY_ROOT;
  if (d.length === 1) return d[0]!;
  return nodeHash(mth(d.slice(0, k(d.length))), mth(d.slice(k(d.length))));
}
function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s
    ? [...path(m, d.slice(0, s)), mth(d.slice(s))]
    : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}
function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const s = k(d.length);
  return m <= s
    ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))]
    : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
}
const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(`entry ${i}`));
/** Proof hashes as the server makes them: ranges, decomposed into complete subtrees, folded. */
function fromRanges(d: Buffer[], ranges: { start: number; end: number }[]): Buffer[] {
  return ranges.map((r) =>
    foldSubtrees(
      completeSubtrees(r).map(({ level, index }) =>
        mth(d.slice(index * 2 ** level, (index + 1) * 2 ** level)),
      ),
    ),
  );
}

describe('RFC 6962 hashing', () => {
  test('leaf and node hashes (known answers)', () => {
    assert.equal(
      leafHash('').toString('hex'),
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
    assert.equal(
      EMPTY_ROOT.toString('hex'),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    assert.equal(
      nodeHash(Buffer.from('N123'), Buffer.from('N456')).toString('hex'),
      'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb',
    );
  });
});

describe('transparency-dev/merkle vectors', () => {
  const inclusion = files(join(VECTORS, 'inclusion'));
  const consistency = files(join(VECTORS, 'consistency'));
  test(`${inclusion.length} inclusion vectors, negative cases included`, () => {
    assert.ok(inclusion.length > 50);
    for (const file of inclusion) {
      const v = JSON.parse(readFileSync(file, 'utf8'));
      const ok = verifyInclusion(
        v.leafIdx,
        v.treeSize,
        b64(v.leafHash),
        (v.proof ?? []).map(b64),
        b64(v.root),
      );
      assert.equal(ok, !v.wantErr, `${file}: ${v.desc}`);
    }
  });
  test(`${consistency.length} consistency vectors, negative cases included`, () => {
    assert.ok(consistency.length > 50);
    for (const file of consistency) {
      const v = JSON.parse(readFileSync(file, 'utf8'));
      const ok = verifyConsistency(v.size1, v.size2, (v.proof ?? []).map(b64), b64(v.root1), b64(v.root2));
      assert.equal(ok, !v.wantErr, `${file}: ${v.desc}`);
    }
  });
});

describe('proofs agree with the RFC definitions', () => {
  test('roots, inclusion and consistency for every size up to 70', () => {
    const all = leaves(70);
    for (let n = 1; n <= 70; n++) {
      const d = all.slice(0, n);
      const root = mth(d);
      assert.deepEqual(rootOf(d), root);
      const builder = new RootBuilder();
      for (const leaf of d) builder.push(leaf);
      assert.deepEqual(builder.root(), root, `streamed root of ${n}`);
      assert.deepEqual(fromRanges(d, [{ start: 0, end: n }])[0], root);
      for (let m = 0; m < n; m++) {
        const proof = fromRanges(d, inclusionRanges(m, n));
        assert.deepEqual(proof, path(m, d), `inclusion ${m} in ${n}`);
        assert.ok(verifyInclusion(m, n, d[m]!, proof, root));
      }
      for (let m = 1; m <= n; m++) {
        const proof = fromRanges(d, consistencyRanges(m, n));
        assert.deepEqual(proof, subproof(m, d, true), `consistency ${m} to ${n}`);
        assert.ok(verifyConsistency(m, n, proof, mth(d.slice(0, m)), root));
      }
    }
  });

  test('property: any tampering with a proof, a root, a leaf or a size is caught', () => {
    const all = leaves(300);
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 300 }),
        fc.nat(),
        fc.nat(),
        // Sizes and indexes off by one, doubled or halved are the vectors' negative cases above:
        // in general a wrong size can chain to the same root, so only the vectors pin them.
        fc.constantFrom('flip', 'truncate', 'pad', 'root', 'leaf'),
        (n, mSeed, bitSeed, how) => {
          const d = all.slice(0, n);
          const m = mSeed % n;
          const root = mth(d);
          const proof = fromRanges(d, inclusionRanges(m, n));
          assert.ok(verifyInclusion(m, n, d[m]!, proof, root));
          const bad: Buffer[] = proof.map((h) => Buffer.from(h));
          let [leaf, r] = [d[m]!, root];
          if (how === 'flip' && bad.length > 0)
            bad[bitSeed % bad.length]![bitSeed % 32]! ^= 1 << (bitSeed % 8);
          else if (how === 'truncate' && bad.length > 0) bad.pop();
          else if (how === 'pad') bad.push(leafHash('extra'));
          else if (how === 'root') r = nodeHash(root, root);
          else if (how === 'leaf') leaf = leafHash('someone else');
          const same =
            leaf === d[m] &&
            r === root &&
            bad.length === proof.length &&
            bad.every((h, i) => h.equals(proof[i]!));
          if (!same) assert.equal(verifyInclusion(m, n, leaf, bad, r), false, `${how} n=${n} m=${m}`);
        },
      ),
      { numRuns: 400 },
    );
  });

  test('property: consistency holds between any two sizes and fails for a forked log', () => {
    const all = leaves(300);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 299 }), fc.integer({ min: 1, max: 300 }), (a, b) => {
        const [m, n] = a <= b ? [a, b] : [b, a];
        const d = all.slice(0, n);
        const proof = fromRanges(d, consistencyRanges(m, n));
        assert.ok(verifyConsistency(m, n, proof, mth(d.slice(0, m)), mth(d)));
        if (m < n) {
          const forked = [...d];
          forked[m - 1] = leafHash('rewritten');
          assert.equal(verifyConsistency(m, n, proof, mth(forked.slice(0, m)), mth(d)), false);
          assert.equal(verifyConsistency(m, n, proof, mth(d.slice(0, m)), mth(forked)), false);
          assert.equal(verifyConsistency(m, n, proof, mth(d), mth(d.slice(0, m))), false, 'swapped roots');
        }
      }),
      { numRuns: 300 },
    );
  });
});
