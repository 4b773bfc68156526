import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UsageError, writeFileAtomic } from '@muster/host';
import { formatPublicKey, parsePublicKey } from '@muster/proto';

/**
 * Ed25519 key files for the fleet root and for operators: the private key as PKCS#8 PEM
 * (mode 0600), the public key beside it in `<file>.pub` as `ed25519:<base64>`.
 */

/** Where an operator's key lives unless `--key` says otherwise. */
export function defaultOperatorKey(env: NodeJS.ProcessEnv = process.env): string {
  const config = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(config, 'muster', 'operator.key');
}

/** Makes a key pair in `path` and `path.pub`; refuses to overwrite either. */
export async function makeKeyFile(path: string, pubPath = `${path}.pub`): Promise<string> {
  const file = resolve(path);
  const pub = resolve(pubPath);
  for (const f of [file, pub]) {
    if (await exists(f)) throw new UsageError(`${f} already exists; move it away or choose another --out`);
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const text = formatPublicKey(publicKey);
  await writeFileAtomic(file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  await writeFileAtomic(pub, `${text}\n`, 0o644);
  return text;
}

/** Reads a private key file, refusing one others can read. */
export function readPrivateKey(path: string): { privateKey: KeyObject; publicKey: string } {
  const file = resolve(path);
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the key ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new UsageError(`${file} is not a private key (PKCS#8 PEM)`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new UsageError(`${file} is not an Ed25519 key`);
  return { privateKey, publicKey: formatPublicKey(createPublicKey(privateKey)) };
}

/** A public key given inline (`ed25519:…`) or as a file holding one. */
export function readPublicKey(value: string): string {
  const text = value.startsWith('ed25519:') ? value : readText(value);
  try {
    parsePublicKey(text);
  } catch {
    throw new UsageError(
      `"${value}" is not a public key (ed25519:<base64 of 32 bytes>) or a file holding one`,
    );
  }
  return text;
}

function readText(path: string): string {
  try {
    return readFileSync(resolve(path), 'utf8').trim();
  } catch {
    return path;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
