import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertPrivateFiles, ensurePrivateDir, writeFileAtomic } from '@muster/host';

/** What an enrolled agent keeps on its host. The private key never leaves it. */
export interface StoredIdentity {
  nodeId: string;
  name: string;
  server: string;
  caPin: string;
  keyPem: string;
  certPem: string;
  caPem: string;
  notAfter: string;
  /** The ledger's verifier key, pinned at enrollment; absent for identities made before it. */
  ledgerKey?: string;
}

export function identityPaths(dir: string) {
  return {
    key: join(dir, 'node.key'),
    cert: join(dir, 'node.pem'),
    ca: join(dir, 'ca.pem'),
    meta: join(dir, 'identity.json'),
  };
}

/** Loads the identity from the data dir, or undefined when the agent has not enrolled yet. */
export async function loadIdentity(dir: string): Promise<StoredIdentity | undefined> {
  const paths = identityPaths(dir);
  await assertPrivateFiles([paths.key]);
  let meta: string;
  try {
    meta = await readFile(paths.meta, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = JSON.parse(meta) as Omit<StoredIdentity, 'keyPem' | 'certPem' | 'caPem'>;
  const [keyPem, certPem, caPem] = await Promise.all([
    readFile(paths.key, 'utf8'),
    readFile(paths.cert, 'utf8'),
    readFile(paths.ca, 'utf8'),
  ]);
  return { ...parsed, keyPem, certPem, caPem };
}

/** Writes the key first and the metadata last, each atomically: a crash never leaves half an identity. */
export async function saveIdentity(dir: string, identity: StoredIdentity): Promise<void> {
  await ensurePrivateDir(dir);
  const paths = identityPaths(dir);
  await writeFileAtomic(paths.key, identity.keyPem, 0o600);
  await writeFileAtomic(paths.cert, identity.certPem, 0o644);
  await writeFileAtomic(paths.ca, identity.caPem, 0o644);
  const { keyPem: _k, certPem: _c, caPem: _a, ...meta } = identity;
  await writeFileAtomic(paths.meta, `${JSON.stringify(meta, null, 2)}\n`, 0o644);
}
