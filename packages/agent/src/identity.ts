import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
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
  /** The fleet root key (`ed25519:…`) pinned at enrollment; commands stay off without it. */
  fleetRoot?: string;
  /** What the node was enrolled as: commands are addressed to it and allowed by these. */
  profile?: string;
  labels?: Record<string, string>;
}

export function identityPaths(dir: string) {
  return {
    key: join(dir, 'node.key'),
    cert: join(dir, 'node.pem'),
    ca: join(dir, 'ca.pem'),
    meta: join(dir, 'identity.json'),
    // A renewal is written here first, so a crash between writing the key and the certificate
    // never leaves a key that does not match its certificate.
    nextKey: join(dir, 'next.key'),
    nextCert: join(dir, 'next.pem'),
  };
}

/** Loads the identity from the data dir, or undefined when the agent has not enrolled yet. */
export async function loadIdentity(dir: string): Promise<StoredIdentity | undefined> {
  const paths = identityPaths(dir);
  await assertPrivateFiles([paths.key, paths.nextKey]);
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
  let identity: StoredIdentity = { ...parsed, keyPem, certPem, caPem };
  if (!matches(keyPem, certPem)) {
    // A renewal was interrupted half-way: finish it from the staged pair.
    const staged = await readStaged(paths);
    if (!staged) throw new Error(`${paths.key} does not match ${paths.cert}; enroll this host again`);
    identity = { ...identity, ...staged };
    await saveRenewedIdentity(dir, identity);
  }
  // The certificate says when it expires; identity.json may lag behind it after a crash.
  return { ...identity, notAfter: new Date(new X509Certificate(identity.certPem).validTo).toISOString() };
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

/**
 * Replaces the identity with a renewed one. The new key and certificate are staged together
 * first, so whichever moment a crash comes, the next start finds a matching pair.
 */
export async function saveRenewedIdentity(dir: string, identity: StoredIdentity): Promise<void> {
  await ensurePrivateDir(dir);
  const paths = identityPaths(dir);
  await writeFileAtomic(paths.nextKey, identity.keyPem, 0o600);
  await writeFileAtomic(paths.nextCert, identity.certPem, 0o644);
  await saveIdentity(dir, identity);
  await rm(paths.nextKey, { force: true });
  await rm(paths.nextCert, { force: true });
}

async function readStaged(
  paths: ReturnType<typeof identityPaths>,
): Promise<{ keyPem: string; certPem: string } | undefined> {
  try {
    const [keyPem, certPem] = await Promise.all([
      readFile(paths.nextKey, 'utf8'),
      readFile(paths.nextCert, 'utf8'),
    ]);
    return matches(keyPem, certPem) ? { keyPem, certPem } : undefined;
  } catch {
    return undefined;
  }
}

function matches(keyPem: string, certPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
