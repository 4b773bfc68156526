import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/**
 * C2SP signed notes and tlog checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint),
 * with Ed25519 keys, so that any transparency-log client can check Muster's ledger.
 */

const ED25519 = 0x01;

/** A checkpoint: the log's origin, its size and its root hash at that size. */
export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
}

export class NoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoteError';
  }
}

/** The 32 raw bytes of an Ed25519 public key. */
export function rawEd25519(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || !jwk.x) throw new NoteError('not an Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

export function ed25519FromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new NoteError('an Ed25519 public key is 32 bytes');
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk',
  });
}

/** The 4-byte key ID: the start of SHA-256(name ‖ "\n" ‖ 0x01 ‖ key). */
export function noteKeyId(name: string, raw: Uint8Array): Buffer {
  return createHash('sha256')
    .update(`${name}\n`)
    .update(Uint8Array.of(ED25519))
    .update(raw)
    .digest()
    .subarray(0, 4);
}

/** The verifier key in C2SP form: `<name>+<8 hex key id>+<base64(0x01 ‖ key)>`. */
export function verifierKey(name: string, publicKey: KeyObject): string {
  const raw = rawEd25519(publicKey);
  return `${name}+${noteKeyId(name, raw).toString('hex')}+${Buffer.concat([Uint8Array.of(ED25519), raw]).toString('base64')}`;
}

export interface Verifier {
  name: string;
  keyId: Buffer;
  publicKey: KeyObject;
}

export function parseVerifierKey(vkey: string): Verifier {
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey.trim());
  if (!match) throw new NoteError('a verifier key reads <name>+<8 hex digits>+<base64>');
  const bytes = Buffer.from(match[3]!, 'base64');
  if (bytes.length !== 33 || bytes[0] !== ED25519)
    throw new NoteError('only Ed25519 verifier keys are supported');
  const raw = bytes.subarray(1);
  const keyId = noteKeyId(match[1]!, raw);
  if (keyId.toString('hex') !== match[2]) throw new NoteError('the verifier key ID does not match its key');
  return { name: match[1]!, keyId, publicKey: ed25519FromRaw(raw) };
}

export function checkpointBody(cp: Checkpoint): string {
  if (cp.origin.includes('\n') || cp.origin.length === 0)
    throw new NoteError('a checkpoint origin is one non-empty line');
  return `${cp.origin}\n${cp.size}\n${cp.root.toString('base64')}\n`;
}

/** Signs a note body (text ending in a newline) with an Ed25519 key under `name`. */
export function signNote(body: string, name: string, privateKey: KeyObject, publicKey: KeyObject): string {
  if (!body.endsWith('\n')) throw new NoteError('a note body ends with a newline');
  const signature = sign(null, Buffer.from(body, 'utf8'), privateKey);
  const keyId = noteKeyId(name, rawEd25519(publicKey));
  return `${body}\n\u2014 ${name} ${Buffer.concat([keyId, signature]).toString('base64')}\n`;
}

/** Checks a signed note against a verifier and returns its body. Throws NoteError otherwise. */
export function openNote(note: string, verifier: Verifier): string {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new NoteError('not a signed note');
  const body = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  for (const line of lines) {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!match) throw new NoteError('malformed signature line');
    if (match[1] !== verifier.name) continue;
    const bytes = Buffer.from(match[2]!, 'base64');
    if (bytes.length !== 68 || !bytes.subarray(0, 4).equals(verifier.keyId)) continue;
    if (verify(null, Buffer.from(body, 'utf8'), verifier.publicKey, bytes.subarray(4))) return body;
    throw new NoteError('the note signature does not verify');
  }
  throw new NoteError(`the note carries no signature by ${verifier.name}`);
}

export function parseCheckpointBody(body: string): Checkpoint {
  const lines = body.split('\n');
  const [origin, sizeText, rootText] = lines;
  if (!origin || !sizeText || !rootText || !/^(0|[1-9]\d*)$/.test(sizeText))
    throw new NoteError('malformed checkpoint');
  const size = Number(sizeText);
  const root = Buffer.from(rootText, 'base64');
  if (!Number.isSafeInteger(size) || root.length !== 32 || root.toString('base64') !== rootText) {
    throw new NoteError('malformed checkpoint');
  }
  return { origin, size, root };
}

/** Verifies a signed checkpoint and reads it. */
export function openCheckpoint(note: string, verifier: Verifier): Checkpoint {
  return parseCheckpointBody(openNote(note, verifier));
}
