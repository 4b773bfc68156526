import { createHash } from 'node:crypto';

/**
 * RFC 6962 / RFC 9162 Merkle trees: hashing, the hashes a proof is made of, and proof
 * verification. Sizes and indexes are plain numbers (exact up to 2^53, far past any log here);
 * the bit arithmetic goes through BigInt so it stays exact beyond 32 bits.
 */

export const HASH_SIZE = 32;

/** SHA-256(0x00 ‖ leaf). */
export function leafHash(leaf: Uint8Array | string): Buffer {
  return createHash('sha256')
    .update(Uint8Array.of(0))
    .update(typeof leaf === 'string' ? Buffer.from(leaf, 'utf8') : leaf)
    .digest();
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(Uint8Array.of(1)).update(left).update(right).digest();
}

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT = createHash('sha256').digest();

/** The largest power of two strictly smaller than n (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A run of leaves [start, end): its hash is MTH(D[start:end]). */
export interface LeafRange {
  start: number;
  end: number;
}

/**
 * The subtrees whose hashes make up the inclusion proof of `index` in a tree of `size`,
 * bottom to top, as RFC 6962 section 2.1.1 defines PATH(m, D[n]).
 */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  if (!(index >= 0 && index < size)) throw new RangeError(`index ${index} is outside a tree of size ${size}`);
  const out: LeafRange[] = [];
  const walk = (m: number, start: number, end: number): void => {
    const n = end - start;
    if (n === 1) return;
    const k = splitPoint(n);
    if (m < k) {
      walk(m, start, start + k);
      out.push({ start: start + k, end });
    } else {
      walk(m - k, start + k, end);
      out.push({ start, end: start + k });
    }
  };
  walk(index, 0, size);
  return out;
}

/**
 * The subtrees whose hashes make up the consistency proof from `size1` to `size2`, as RFC 6962
 * section 2.1.2 defines PROOF(m, D[n]).
 */
export function consistencyRanges(size1: number, size2: number): LeafRange[] {
  if (!(size1 > 0 && size1 <= size2)) throw new RangeError(`no consistency proof from ${size1} to ${size2}`);
  const out: LeafRange[] = [];
  const walk = (m: number, start: number, end: number, whole: boolean): void => {
    const n = end - start;
    if (m === n) {
      if (!whole) out.push({ start, end });
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      walk(m, start, start + k, whole);
      out.push({ start: start + k, end });
    } else {
      walk(m - k, start + k, end, false);
      out.push({ start, end: start + k });
    }
  };
  if (size1 < size2) walk(size1, 0, size2, true);
  return out;
}

/** A complete subtree: 2^level leaves starting at index·2^level. Its hash never changes. */
export interface SubtreeId {
  level: number;
  index: number;
}

/**
 * The complete subtrees that a range decomposes into, left to right; MTH of the range is their
 * hashes folded from the right: H(a, H(b, H(c, d))). Any range a proof or a root needs takes at
 * most log2(n) + 1 of them, which is why storing complete subtrees makes proofs O(log n) reads.
 */
export function completeSubtrees(range: LeafRange): SubtreeId[] {
  const out: SubtreeId[] = [];
  let { start } = range;
  while (start < range.end) {
    const n = range.end - start;
    // MTH splits at the largest power of two below n; a power of two is complete itself. Every
    // range a proof asks for starts at a multiple of that size, so the index is exact.
    const size = isPowerOfTwo(n) ? n : splitPoint(n);
    out.push({ level: Math.log2(size), index: start / size });
    start += size;
  }
  return out;
}

export function isPowerOfTwo(n: number): boolean {
  const b = BigInt(n);
  return b > 0n && (b & (b - 1n)) === 0n;
}

/** Folds the hashes of a range's complete subtrees (left to right) into the range's hash. */
export function foldSubtrees(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return EMPTY_ROOT;
  let acc: Buffer = Buffer.from(hashes[hashes.length - 1]!);
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i]!, acc);
  return acc;
}

/** The root of a list of leaves, straight from the RFC's definition: for tests and small trees. */
export function rootOf(leafHashes: readonly Uint8Array[]): Buffer {
  if (leafHashes.length === 0) return EMPTY_ROOT;
  if (leafHashes.length === 1) return Buffer.from(leafHashes[0]!);
  const k = splitPoint(leafHashes.length);
  return nodeHash(rootOf(leafHashes.slice(0, k)), rootOf(leafHashes.slice(k)));
}

export class ProofError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProofError';
  }
}

const big = BigInt;
const bitLength = (x: bigint) => (x === 0n ? 0 : x.toString(2).length);
const onesCount = (x: bigint) => [...x.toString(2)].filter((c) => c === '1').length;
function trailingZeros(x: bigint): number {
  let n = 0;
  while (x > 0n && (x & 1n) === 0n) {
    x >>= 1n;
    n++;
  }
  return n;
}

/** Where the paths to `index` and to the last leaf part: [inner, border] proof lengths (RFC 9162). */
function decompose(index: bigint, size: bigint): [number, number] {
  const inner = bitLength(index ^ (size - 1n));
  return [inner, onesCount(index >> big(inner))];
}

function checkHash(hash: Uint8Array, what: string): void {
  if (hash.length !== HASH_SIZE) throw new ProofError(`${what} is ${hash.length} bytes, not ${HASH_SIZE}`);
}

/** The root an inclusion proof leads to (RFC 9162 section 2.1.3.2). Throws ProofError when malformed. */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Buffer {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new ProofError(`leaf index ${index} is outside a tree of size ${size}`);
  }
  checkHash(leaf, 'the leaf hash');
  for (const [i, h] of proof.entries()) checkHash(h, `proof hash ${i}`);
  const [inner, border] = decompose(big(index), big(size));
  if (proof.length !== inner + border)
    throw new ProofError(`the proof has ${proof.length} hashes, not ${inner + border}`);
  let hash: Buffer = Buffer.from(leaf);
  for (let i = 0; i < inner; i++) {
    hash = (big(index) >> big(i)) & 1n ? nodeHash(proof[i]!, hash) : nodeHash(hash, proof[i]!);
  }
  for (let i = inner; i < proof.length; i++) hash = nodeHash(proof[i]!, hash);
  return hash;
}

/** True when the proof shows the leaf at `index` is in the tree of `size` with `root`. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  try {
    return rootFromInclusionProof(index, size, leaf, proof).equals(root);
  } catch (err) {
    if (err instanceof ProofError) return false;
    throw err;
  }
}

/**
 * True when the proof shows the tree of `size1` with `root1` is a prefix of the tree of
 * `size2` with `root2` (RFC 9162 section 2.1.4.2). A proof from the empty tree means nothing
 * and is refused, as transparency-dev/merkle does.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  try {
    for (const [i, h] of proof.entries()) checkHash(h, `proof hash ${i}`);
    if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 >= 0 && size2 >= size1))
      return false;
    if (size1 === 0) return false;
    if (size1 === size2) return proof.length === 0 && Buffer.from(root1).equals(root2);
    if (proof.length === 0) return false;
    const s1 = big(size1);
    const [fullInner, border] = decompose(s1 - 1n, big(size2));
    const shift = trailingZeros(s1);
    const inner = fullInner - shift;
    let seed: Uint8Array;
    let rest: readonly Uint8Array[];
    if (s1 === 1n << big(shift)) {
      seed = root1; // size1 is itself a complete subtree: its root is the seed
      rest = proof;
    } else {
      seed = proof[0]!;
      rest = proof.slice(1);
    }
    if (rest.length !== inner + border) return false;
    const mask = (s1 - 1n) >> big(shift);
    let hash1: Buffer = Buffer.from(seed);
    let hash2: Buffer = Buffer.from(seed);
    for (let i = 0; i < inner; i++) {
      if ((mask >> big(i)) & 1n) {
        hash1 = nodeHash(rest[i]!, hash1);
        hash2 = nodeHash(rest[i]!, hash2);
      } else {
        hash2 = nodeHash(hash2, rest[i]!);
      }
    }
    for (let i = inner; i < rest.length; i++) {
      hash1 = nodeHash(rest[i]!, hash1);
      hash2 = nodeHash(rest[i]!, hash2);
    }
    return hash1.equals(root1) && hash2.equals(root2);
  } catch (err) {
    if (err instanceof ProofError) return false;
    throw err;
  }
}

/**
 * Builds the root of a log one leaf at a time in O(log n) memory: a stack of the complete
 * subtrees seen so far, merged whenever two of the same size meet. For verifying exports of
 * any length as they stream past.
 */
export class RootBuilder {
  private readonly stack: Array<{ level: number; hash: Buffer }> = [];
  size = 0;

  push(leaf: Uint8Array): void {
    let node: { level: number; hash: Buffer } = { level: 0, hash: Buffer.from(leaf) };
    while (this.stack.length > 0 && this.stack[this.stack.length - 1]!.level === node.level) {
      const left = this.stack.pop()!;
      node = { level: node.level + 1, hash: nodeHash(left.hash, node.hash) };
    }
    this.stack.push(node);
    this.size++;
  }

  root(): Buffer {
    return foldSubtrees(this.stack.map((s) => s.hash));
  }
}
