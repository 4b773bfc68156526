import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  assertPrivateFiles,
  ensurePrivateDir,
  exportPrivateKeyPem,
  generateKeyPair,
  importKeyPairPem,
  type KeyPair,
  writeFileAtomic,
} from '@muster/host';
import { spkiFingerprint } from '@muster/proto';

/**
 * The key a host asks to join with, kept in its data dir until a certificate for it arrives (by
 * approval or by a grant file). It never leaves the host: only its CSR does.
 */
export interface RequestKey {
  keys: KeyPair;
  keyPem: string;
  /** `sha256:` of its SubjectPublicKeyInfo: what the operator compares before approving. */
  fingerprint: string;
}

/** The request the host is waiting on, so a restarted agent polls it instead of asking again. */
export interface RequestMemo {
  id: string;
  server: string;
  name: string;
  fingerprint: string;
}

export function requestPaths(dir: string) {
  return { key: join(dir, 'request.key'), memo: join(dir, 'request.json') };
}

export function fingerprintOf(key: KeyObject): string {
  const publicKey = key.type === 'public' ? key : createPublicKey(key);
  return spkiFingerprint(publicKey.export({ type: 'spki', format: 'der' }));
}

/** The key held for a request, if this host made one. */
export async function loadRequestKey(dir: string): Promise<RequestKey | undefined> {
  const { key } = requestPaths(dir);
  await assertPrivateFiles([key]);
  let keyPem: string;
  try {
    keyPem = await readFile(key, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const keys = importKeyPairPem(keyPem);
  return { keys, keyPem, fingerprint: fingerprintOf(keys.publicKey) };
}

/** The key held for a request, or a new one written 0600 (atomically) before any CSR goes out. */
export async function requestKey(dir: string): Promise<RequestKey> {
  const held = await loadRequestKey(dir);
  if (held) return held;
  const keys = await generateKeyPair();
  const keyPem = exportPrivateKeyPem(keys.privateKey);
  await ensurePrivateDir(dir);
  await writeFileAtomic(requestPaths(dir).key, keyPem, 0o600);
  return { keys, keyPem, fingerprint: fingerprintOf(keys.publicKey) };
}

export async function loadRequestMemo(dir: string): Promise<RequestMemo | undefined> {
  try {
    return JSON.parse(await readFile(requestPaths(dir).memo, 'utf8')) as RequestMemo;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function saveRequestMemo(dir: string, memo: RequestMemo): Promise<void> {
  await writeFileAtomic(requestPaths(dir).memo, `${JSON.stringify(memo, null, 2)}\n`, 0o644);
}

/** Forgets the request: once its certificate is installed, or once it was refused. */
export async function clearRequest(dir: string): Promise<void> {
  const paths = requestPaths(dir);
  await rm(paths.memo, { force: true });
  await rm(paths.key, { force: true });
}
