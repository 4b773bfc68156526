/**
 * The ledger checks a browser can run: inclusion proofs (RFC 9162 section 2.1.3.2) and C2SP
 * signed checkpoints, over an injected SHA-256 and Ed25519 (WebCrypto in the console). No
 * Node built-ins here: this module is bundled into the console as it is.
 */

/** SHA-256 of some bytes, as WebCrypto's `subtle.digest` gives it. */
export type Sha256 = (data: Uint8Array) => Promise<Uint8Array>;
/** True when `signature` is the Ed25519 signature of `message` by the raw 32-byte `publicKey`. */
export type Ed25519Verify = (
  publicKey: Uint8Array,
  signature: Uint8Array,
  message: Uint8Array,
) => Promise<boolean>;

const utf8 = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** SHA-256(0x00 ‖ entry): the leaf hash of the exact canonical JSON text of an entry. */
export function leafHashWith(sha256: Sha256, entry: string): Promise<Uint8Array> {
  return sha256(concat(Uint8Array.of(0), utf8.encode(entry)));
}

const bitLength = (x: bigint) => (x === 0n ? 0 : x.toString(2).length);
const onesCount = (x: bigint) => [...x.toString(2)].filter((c) => c === '1').length;

/**
 * The root an inclusion proof leads to, or undefined when the proof is malformed (wrong
 * length, a hash that is not 32 bytes, an index outside the tree).
 */
export async function rootFromInclusionProofWith(
  sha256: Sha256,
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<Uint8Array | undefined> {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size))
    return undefined;
  if (leaf.length !== 32 || proof.some((h) => h.length !== 32)) return undefined;
  const i = BigInt(index);
  const inner = bitLength(i ^ BigInt(size - 1));
  const border = onesCount(i >> BigInt(inner));
  if (proof.length !== inner + border) return undefined;
  const node = (l: Uint8Array, r: Uint8Array) => sha256(concat(Uint8Array.of(1), l, r));
  let hash = leaf;
  for (let k = 0; k < inner; k++) {
    hash = (i >> BigInt(k)) & 1n ? await node(proof[k]!, hash) : await node(hash, proof[k]!);
  }
  for (let k = inner; k < proof.length; k++) hash = await node(proof[k]!, hash);
  return hash;
}

/** A checkpoint read from a signed note, with the signature lines it carries. */
export interface SignedCheckpoint {
  origin: string;
  size: number;
  root: Uint8Array;
  /** The signed text: everything up to the blank line. */
  body: string;
  signatures: Array<{ name: string; keyId: Uint8Array; signature: Uint8Array }>;
}

/** Reads a C2SP checkpoint note without checking it; undefined when it is not one. */
export function parseCheckpointNote(note: string): SignedCheckpoint | undefined {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) return undefined;
  const body = note.slice(0, split + 1);
  const [origin, sizeText, rootText] = body.split('\n');
  if (!origin || !sizeText || !rootText || !/^(0|[1-9]\d*)$/.test(sizeText)) return undefined;
  let root: Uint8Array;
  try {
    root = fromBase64(rootText);
  } catch {
    return undefined;
  }
  if (root.length !== 32) return undefined;
  const signatures: SignedCheckpoint['signatures'] = [];
  for (const line of note.slice(split + 2, -1).split('\n')) {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!match) return undefined;
    const bytes = fromBase64(match[2]!);
    if (bytes.length === 68) {
      signatures.push({ name: match[1]!, keyId: bytes.subarray(0, 4), signature: bytes.subarray(4) });
    }
  }
  return { origin, size: Number(sizeText), root, body, signatures };
}

/**
 * True when the checkpoint carries a good signature by the C2SP verifier key
 * `<name>+<8 hex key id>+<base64(0x01 ‖ Ed25519 key)>`.
 */
export async function checkpointSignedBy(
  sha256: Sha256,
  verify: Ed25519Verify,
  checkpoint: SignedCheckpoint,
  vkey: string,
): Promise<boolean> {
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey.trim());
  if (!match) return false;
  const key = fromBase64(match[3]!);
  if (key.length !== 33 || key[0] !== 0x01) return false;
  const name = match[1]!;
  const keyId = (await sha256(concat(utf8.encode(`${name}\n`), key))).subarray(0, 4);
  if (toHex(keyId) !== match[2]) return false;
  for (const sig of checkpoint.signatures) {
    if (sig.name !== name || !sameBytes(sig.keyId, keyId)) continue;
    if (await verify(key.subarray(1), sig.signature, utf8.encode(checkpoint.body))) return true;
  }
  return false;
}

/** The one authorization decision, so the console can leave out what the server would refuse. */
export { roleAllows, roleAllowsSome } from './roles.js';
