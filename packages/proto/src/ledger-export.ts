import { canonicalJson } from './jcs.js';
import { leafHash, RootBuilder } from './merkle.js';
import { type Checkpoint, NoteError, openCheckpoint, parseVerifierKey } from './note.js';

/**
 * Ledger exports (`muster ledger export`): JSON lines, first a header
 * `{vkey, checkpoint, leafHashes}`, then every entry byte for byte as hashed. The header's leaf
 * hashes are what the server stored; the signed root authenticates them, and they let a
 * verifier name the first entry that differs.
 */
/** What `verify` found: ok, or the first seq that is not what the signed checkpoint says. */
export interface VerifyResult {
  ok: boolean;
  size: number;
  firstBadSeq?: number;
  reason?: string;
}

/**
 * Checks an export with nothing but the ledger public key: the checkpoint's signature, that
 * the leaf hashes fold to its root, and that every entry is canonical JSON at its own seq whose
 * hash is the leaf hash. Names the first entry that breaks any of it.
 */
export async function verifyExport(
  lines: AsyncIterable<string>,
  trustedKey: string | undefined,
): Promise<VerifyResult> {
  let header: { vkey?: string; checkpoint?: string; leafHashes?: string } | undefined;
  let checkpoint: Checkpoint | undefined;
  let leaves: Buffer | undefined;
  const builder = new RootBuilder();
  let seq = 0;
  for await (const line of lines) {
    if (!header) {
      try {
        header = JSON.parse(line);
      } catch {
        return { ok: false, size: 0, reason: 'the first line is not the export header' };
      }
      if (!header?.vkey || !header.checkpoint || typeof header.leafHashes !== 'string') {
        return { ok: false, size: 0, reason: 'the export header lacks vkey, checkpoint or leafHashes' };
      }
      if (trustedKey !== undefined && trustedKey.trim() !== header.vkey) {
        return {
          ok: false,
          size: 0,
          reason: 'the export was signed with a different key than the trusted one',
        };
      }
      try {
        checkpoint = openCheckpoint(header.checkpoint, parseVerifierKey(trustedKey ?? header.vkey));
      } catch (err) {
        if (err instanceof NoteError)
          return { ok: false, size: 0, reason: `the checkpoint does not verify: ${err.message}` };
        throw err;
      }
      leaves = Buffer.from(header.leafHashes, 'base64');
      if (leaves.length !== 32 * checkpoint.size) {
        return { ok: false, size: checkpoint.size, reason: 'the leaf hashes do not cover the checkpoint' };
      }
      for (let i = 0; i < checkpoint.size; i++) builder.push(leaves.subarray(32 * i, 32 * i + 32));
      if (!builder.root().equals(checkpoint.root)) {
        return { ok: false, size: checkpoint.size, reason: 'the leaf hashes do not lead to the signed root' };
      }
      continue;
    }
    const size = checkpoint!.size;
    const bad = (reason: string): VerifyResult => ({ ok: false, size, firstBadSeq: seq, reason });
    if (seq >= size) return bad(`entry ${seq} is beyond the signed checkpoint of ${size} entries`);
    let parsed: { seq?: unknown };
    try {
      parsed = JSON.parse(line);
    } catch {
      return bad(`entry ${seq} is not JSON`);
    }
    if (parsed.seq !== seq)
      return bad(`entry ${seq} says it is seq ${String(parsed.seq)} (missing, moved or duplicated)`);
    if (canonicalJson(parsed) !== line) return bad(`entry ${seq} is not in canonical form`);
    if (!leafHash(line).equals(leaves!.subarray(32 * seq, 32 * seq + 32)))
      return bad(`entry ${seq} was changed`);
    seq++;
  }
  if (!checkpoint) return { ok: false, size: 0, reason: 'the export is empty' };
  if (seq < checkpoint.size) {
    return { ok: false, size: checkpoint.size, firstBadSeq: seq, reason: `entry ${seq} is missing` };
  }
  return { ok: true, size: checkpoint.size };
}
