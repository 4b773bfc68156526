import { generateKeyPairSync, X509Certificate as NodeX509, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { assertPrivateFiles, writeFileAtomic } from '@muster/host';
import type { Clock, IdSource } from '../clock.js';
import { adminTokenWeakness } from '../http/auth.js';
import { CertificateAuthority, isIpAddress } from './ca.js';
import { type FleetRoot, fleetRootPaths, loadFleetRoot } from './fleet-root.js';

export const CA_LIFETIME_MS = 10 * 365 * 86_400_000;
/** The server's own TLS identity is short-lived too: renewed in place when a third is left. */
export const SERVER_CERT_LIFETIME_MS = 30 * 86_400_000;

/** The server's keys and credentials as found or made in its data dir. */
export interface ServerIdentity {
  /**
   * The root behind the server's own TLS certificate, which join lines pin (`ca.pem`). During
   * a CA rotation it is the old root, so agents that trust only it can still connect.
   */
  ca: CertificateAuthority;
  /** During a CA rotation: the new root (`ca-<serial>.pem`), which issues every node certificate. */
  nextCa?: CertificateAuthority;
  serverKeyPem: string;
  serverCertPem: string;
  adminToken: string;
  /** The Ed25519 key that signs ledger checkpoints, PKCS#8 PEM. */
  ledgerKeyPem: string;
  /** The fleet root public key that signs command policies. */
  fleetRoot: FleetRoot;
  paths: DataDirPaths;
  /** Files made on this start, for the start-up message. */
  created: string[];
}

export interface DataDirPaths {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminToken: string;
  ledgerKey: string;
}

export function dataDirPaths(dir: string): DataDirPaths {
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    adminToken: join(dir, 'admin.token'),
    ledgerKey: join(dir, 'ledger.key'),
  };
}

/** Where a root made by `muster ca rotate` is kept until the rotation finishes. */
export function rotatedCaPaths(dir: string, serial: string): { cert: string; key: string } {
  return { cert: join(dir, `ca-${serial}.pem`), key: join(dir, `ca-${serial}.key`) };
}

/** The rotation as the shared store records it, which decides what the data dir should hold. */
export interface RotationOnRecord {
  state: 'none' | 'overlap' | 'finished';
  /** The serial of the root the rotation made. */
  newSerial: string | null;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The names agents may dial the server by: its listen address, this host, loopback and `--san`. */
export function serverNames(listenHost: string, extra: readonly string[]): string[] {
  const names = new Set<string>();
  if (listenHost !== '0.0.0.0' && listenHost !== '::' && listenHost !== '') names.add(listenHost);
  for (const name of extra) names.add(name);
  names.add('localhost');
  names.add('127.0.0.1');
  names.add('::1');
  names.add(hostname().toLowerCase());
  return [...names];
}

/** Thrown when the data dir or a file in it could be changed by someone other than the server's user. */
export class UntrustedFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UntrustedFileError';
  }
}

/** The data dir's files that decide whom the server trusts or that hold its secrets. */
function trustFiles(dir: string, names: readonly string[]): string[] {
  const paths = dataDirPaths(dir);
  const root = fleetRootPaths(dir);
  const db = join(dir, 'muster.db');
  const rotated = names.filter((name) => /^ca-[0-9a-f]+\.(pem|key)$/.test(name)).map((n) => join(dir, n));
  return [
    paths.caCert,
    paths.caKey,
    paths.serverCert,
    paths.serverKey,
    paths.adminToken,
    paths.ledgerKey,
    root.pub,
    root.key,
    ...rotated,
    db,
    `${db}-wal`,
    `${db}-shm`,
  ];
}

/**
 * Why a path cannot be trusted, if it cannot: writable by group or others, or owned by a user
 * other than the server's. Files owned by root are accepted as sshd's StrictModes does: root can
 * change anything anyway.
 */
function trustProblem(
  path: string,
  info: { mode: number; uid: number; isDirectory(): boolean },
): string | undefined {
  const uid = process.getuid?.();
  const harm = info.isDirectory() ? 'swap the keys in it' : 'replace it';
  if (uid !== undefined && info.uid !== uid && info.uid !== 0) {
    return `${path} is owned by uid ${info.uid}, not by the user the server runs as (uid ${uid}), so that user could ${harm}; run: chown ${uid} ${path}`;
  }
  if ((info.mode & 0o022) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    return `${path} is writable by group or others (mode ${mode}), so another local user could ${harm}; run: chmod go-w ${path}`;
  }
  return undefined;
}

async function statIfExists(path: string) {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}

/**
 * Makes the data dir on first start (0700, whatever the umask), and refuses one that another
 * local user could change: the dir itself or any trust file in it writable by group or others,
 * or owned by someone else. A swapped `root.pub` or `ca.pem` would otherwise put an attacker's
 * pins in every join line. Secret files must not be readable by others either. `outside` are
 * trust files given by flag (`--admin-token-file`, `--fleet-root FILE`), held to the same rules.
 */
export async function openDataDir(
  dir: string,
  outside: { secrets?: readonly string[]; public?: readonly string[] } = {},
): Promise<void> {
  if ((await mkdir(dir, { recursive: true, mode: 0o700 })) !== undefined) await chmod(dir, 0o700);
  const dirProblem = trustProblem(dir, await stat(dir));
  if (dirProblem) throw new UntrustedFileError(dirProblem);
  const files = trustFiles(dir, await readdir(dir));
  const secrets = [...files.filter((file) => file.endsWith('.key')), dataDirPaths(dir).adminToken];
  await assertPrivateFiles([...secrets, ...(outside.secrets ?? [])]);
  for (const file of [...files, ...(outside.secrets ?? []), ...(outside.public ?? [])]) {
    const info = await statIfExists(file);
    const problem = info && trustProblem(file, info);
    if (problem) throw new UntrustedFileError(problem);
  }
}

/** The trust files the settings name outside the data dir. */
export function trustFilesOutside(opts: { adminTokenFile?: string; fleetRoot?: string }) {
  return {
    secrets: opts.adminTokenFile ? [opts.adminTokenFile] : [],
    public: opts.fleetRoot && !opts.fleetRoot.startsWith('ed25519:') ? [opts.fleetRoot] : [],
  };
}

/**
 * Opens the data dir, making on first start the fleet CA, the server's TLS identity and the
 * admin token. Refuses key files that others can read. Re-issues the server identity when the
 * names it must carry changed or a third of its lifetime is left.
 */
export async function prepareDataDir(opts: {
  dir: string;
  trustDomain: string;
  sans: readonly string[];
  adminTokenFile?: string;
  clock: Clock;
  ids: IdSource;
  /** `--fleet-root`: a public key or a file holding one. */
  fleetRoot?: string;
  /** What the store says about a CA rotation; none when absent. */
  rotation?: RotationOnRecord;
}): Promise<ServerIdentity> {
  const paths = dataDirPaths(opts.dir);
  const tokenPath = opts.adminTokenFile ?? paths.adminToken;
  await openDataDir(opts.dir, trustFilesOutside(opts));
  const created: string[] = [];
  const now = opts.clock.now();
  const rotation = opts.rotation ?? { state: 'none', newSerial: null };
  // A finish recorded in the store whose files were not all moved (a crash): complete it first.
  if (rotation.state === 'finished' && rotation.newSerial) {
    const next = rotatedCaPaths(opts.dir, rotation.newSerial);
    if ((await readIfExists(next.key)) !== undefined) await promoteRotatedCa(paths, next);
  }

  let ca: CertificateAuthority;
  const caKeyPem = await readIfExists(paths.caKey);
  const caCertPem = await readIfExists(paths.caCert);
  if (caKeyPem && caCertPem) {
    ca = CertificateAuthority.load(caCertPem, caKeyPem, opts.trustDomain);
  } else if (caKeyPem || caCertPem) {
    throw new Error(`${paths.dir} holds only half of the fleet CA (ca.pem and ca.key go together)`);
  } else {
    const made = CertificateAuthority.create({
      now,
      lifetimeMs: CA_LIFETIME_MS,
      trustDomain: opts.trustDomain,
      serial: opts.ids.serial(),
    });
    ca = made.ca;
    await writeFileAtomic(paths.caKey, made.keyPem, 0o600);
    await writeFileAtomic(paths.caCert, ca.pem, 0o644);
    created.push(paths.caCert, paths.caKey);
  }

  const nextCa =
    rotation.state === 'overlap' && rotation.newSerial
      ? await loadRotatedCa(opts.dir, rotation.newSerial, opts.trustDomain)
      : undefined;

  let serverKeyPem = await readIfExists(paths.serverKey);
  let serverCertPem = await readIfExists(paths.serverCert);
  if (!serverKeyPem || !serverCertPem || needsNewServerCert(serverCertPem, ca, opts.sans, now)) {
    if (!serverKeyPem) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      serverKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      await writeFileAtomic(paths.serverKey, serverKeyPem, 0o600);
    }
    const issued = ca.issueServerCertificate({
      keyPem: serverKeyPem,
      sans: opts.sans,
      serial: opts.ids.serial(),
      now,
      lifetimeMs: SERVER_CERT_LIFETIME_MS,
    });
    serverCertPem = issued.pem;
    await writeFileAtomic(paths.serverCert, serverCertPem, 0o644);
    created.push(paths.serverCert);
  }

  let adminToken = (await readIfExists(tokenPath))?.trim();
  if (!adminToken) {
    if (opts.adminTokenFile) throw new Error(`admin token file ${opts.adminTokenFile} is empty or missing`);
    adminToken = `mat_${randomBytes(32).toString('base64url')}`;
    await writeFileAtomic(tokenPath, `${adminToken}\n`, 0o600);
    created.push(tokenPath);
  }
  const weakness = adminTokenWeakness(adminToken);
  if (weakness) {
    throw new Error(
      `the admin token in ${tokenPath} is too weak (${weakness}); ` +
        (opts.adminTokenFile
          ? `put a random one there, e.g. openssl rand -base64 32 > ${tokenPath}`
          : `remove ${tokenPath} and start again to have a strong one made`),
    );
  }

  let ledgerKeyPem = await readIfExists(paths.ledgerKey);
  if (!ledgerKeyPem) {
    const { privateKey } = generateKeyPairSync('ed25519');
    ledgerKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await writeFileAtomic(paths.ledgerKey, ledgerKeyPem, 0o600);
    created.push(paths.ledgerKey);
  }

  const fleetRoot = await loadFleetRoot(opts.dir, opts.fleetRoot);
  created.push(...fleetRoot.created);

  return {
    ca,
    fleetRoot,
    ...(nextCa ? { nextCa } : {}),
    serverKeyPem,
    serverCertPem,
    adminToken,
    ledgerKeyPem,
    paths: { ...paths, adminToken: tokenPath },
    created,
  };
}

/** Loads the root a rotation made; refuses to go on without it, since it issues every certificate. */
export async function loadRotatedCa(
  dir: string,
  serial: string,
  trustDomain: string,
): Promise<CertificateAuthority> {
  const next = rotatedCaPaths(dir, serial);
  await assertPrivateFiles([next.key]);
  const [certPem, keyPem] = [await readIfExists(next.cert), await readIfExists(next.key)];
  if (!certPem || !keyPem)
    throw new Error(
      `a fleet CA rotation is in progress but ${next.cert} or ${next.key} is missing (replicas must share one data dir)`,
    );
  return CertificateAuthority.load(certPem, keyPem, trustDomain);
}

/**
 * The root a finished rotation made, as another replica left it in the shared data dir: still
 * under its own name, or already moved to `ca.pem`. Throws while neither holds it yet.
 */
export async function loadFinishedCa(
  paths: DataDirPaths,
  serial: string,
  trustDomain: string,
): Promise<CertificateAuthority> {
  const next = rotatedCaPaths(paths.dir, serial);
  if ((await readIfExists(next.key)) !== undefined) return loadRotatedCa(paths.dir, serial, trustDomain);
  const ca = CertificateAuthority.load(
    await readFile(paths.caCert, 'utf8'),
    await readFile(paths.caKey, 'utf8'),
    trustDomain,
  );
  if (ca.serial !== serial) throw new Error(`${paths.caCert} does not hold the rotated fleet CA yet`);
  return ca;
}

/**
 * Makes a rotated root the fleet CA on disk: its key and certificate replace `ca.key` and
 * `ca.pem` (the old root's key is gone from then on), then its own files go. Each step is
 * atomic and the whole is safe to repeat, so a start after a crash half-way completes it.
 */
export async function promoteRotatedCa(
  paths: DataDirPaths,
  next: { cert: string; key: string },
): Promise<void> {
  const [certPem, keyPem] = await Promise.all([readFile(next.cert, 'utf8'), readFile(next.key, 'utf8')]);
  await writeFileAtomic(paths.caKey, keyPem, 0o600);
  await writeFileAtomic(paths.caCert, certPem, 0o644);
  await rm(next.key, { force: true });
  await rm(next.cert, { force: true });
}

/** True when the server certificate is not the CA's, lacks a name it must carry, or has a third of its lifetime left. */
export function needsNewServerCert(
  pem: string,
  ca: CertificateAuthority,
  sans: readonly string[],
  now: number,
): boolean {
  const node = new NodeX509(pem);
  if (!node.checkIssued(ca.certificate) || !node.verify(ca.certificate.publicKey)) return true;
  const notAfter = Date.parse(node.validTo);
  const lifetime = notAfter - Date.parse(node.validFrom);
  if (notAfter - now < lifetime / 3) return true;
  return sans.some((san) => (isIpAddress(san) ? !node.checkIP(san) : !node.checkHost(san)));
}
