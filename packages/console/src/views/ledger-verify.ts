import {
  fromBase64,
  leafHashWith,
  rootFromInclusionProofWith,
  type SignedCheckpoint,
  sameBytes,
  toBase64,
} from '@muster/proto/web';
import { api } from '../api.js';

export const sha256 = async (data: Uint8Array) =>
  new Uint8Array(await crypto.subtle.digest('SHA-256', data as BufferSource));

export class NoEd25519 extends Error {}
export const ed25519 = async (raw: Uint8Array, signature: Uint8Array, msg: Uint8Array) => {
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey('raw', raw as BufferSource, { name: 'Ed25519' }, false, ['verify']);
  } catch {
    throw new NoEd25519('this browser cannot check Ed25519 signatures');
  }
  return crypto.subtle.verify({ name: 'Ed25519' }, key, signature as BufferSource, msg as BufferSource);
};

export interface Verdict {
  ok: boolean;
  text: string;
}

/**
 * Checks, here in the browser, that entry `seq` is in the tree the checkpoint signs: the entry
 * and its inclusion proof come from the server, which is not trusted to say so itself.
 */
export async function inclusionVerdict(seq: number, cp: SignedCheckpoint): Promise<Verdict> {
  const { entries: got } = await api<{ entries: Array<{ seq: number; entry: string }> }>(
    'GET',
    `/v1/ledger/entries?start=${seq}&end=${seq + 1}`,
  );
  const entry = got[0];
  if (!entry || entry.seq !== seq) throw new Error(`the server did not give entry ${seq}`);
  const proof = await api<{ hashes: string[] }>(
    'GET',
    `/v1/ledger/proof/inclusion?seq=${seq}&size=${cp.size}`,
  );
  const leaf = await leafHashWith(sha256, entry.entry);
  const root = await rootFromInclusionProofWith(sha256, seq, cp.size, leaf, proof.hashes.map(fromBase64));
  return root && sameBytes(root, cp.root)
    ? {
        ok: true,
        text: `Included: its proof (${proof.hashes.length} hashes) leads to the root of the signed checkpoint at size ${cp.size}.`,
      }
    : {
        ok: false,
        text: `NOT included: the proof does not lead to the checkpoint's root ${toBase64(cp.root)}.`,
      };
}
