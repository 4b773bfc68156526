import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@muster/host';
import { formatPublicKey, parsePublicKey } from '@muster/proto';

/** Where `muster root init` puts the fleet root by default, and where the server looks for it. */
export function fleetRootPaths(dataDir: string) {
  return { key: join(dataDir, 'root.key'), pub: join(dataDir, 'root.pub') };
}

export interface FleetRoot {
  /** `ed25519:<base64>`: the key every command policy must be signed with. */
  publicKey: string;
  /** The private key sits in the data dir: fine for a trial, not for production. */
  keyInDataDir: boolean;
  /** Files made on this start. */
  created: string[];
}

/** Makes a fleet root key pair: the private key as PKCS#8 PEM, the public one as `ed25519:…`. */
export function makeFleetRoot(): { keyPem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKey: formatPublicKey(publicKey),
  };
}

/**
 * The fleet root public key the server relays policies for: the configured one (a key or a
 * file), else the data dir's root.pub; on a first start with neither, one is made in the data
 * dir so the embedded default works out of the box.
 */
export async function loadFleetRoot(dataDir: string, configured?: string): Promise<FleetRoot> {
  const paths = fleetRootPaths(dataDir);
  const keyInDataDir = await exists(paths.key);
  if (configured) {
    const text = configured.startsWith('ed25519:') ? configured : await readKeyFile(configured);
    return { publicKey: checked(text, configured), keyInDataDir, created: [] };
  }
  if (await exists(paths.pub)) {
    return { publicKey: checked(await readKeyFile(paths.pub), paths.pub), keyInDataDir, created: [] };
  }
  const made = makeFleetRoot();
  await writeFileAtomic(paths.key, made.keyPem, 0o600);
  await writeFileAtomic(paths.pub, `${made.publicKey}\n`, 0o644);
  return { publicKey: made.publicKey, keyInDataDir: true, created: [paths.pub, paths.key] };
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new Error(
      `cannot read the fleet root public key from ${path}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
}

function checked(text: string, from: string): string {
  try {
    parsePublicKey(text);
    return text;
  } catch {
    throw new Error(`${from} is not a fleet root public key (ed25519:<base64 of 32 bytes>)`);
  }
}

/**
 * Whether a key file is there. Only "no such file" means no: a root.pub that cannot be read (a
 * directory, no permission) must stop the start, not make a new fleet root over the old key.
 */
async function exists(path: string): Promise<boolean> {
  try {
    await readFile(path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    throw new Error(`cannot read ${path}: ${code}`);
  }
}
