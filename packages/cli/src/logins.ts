import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '@muster/host';

/**
 * Where `muster login` keeps what it got for one control plane: the user's key (made here and
 * never sent), the certificate issued for it, and the CA the admin plane was verified with.
 * One folder per admin URL, so logins to two control planes never mix.
 */
export interface LoginFiles {
  dir: string;
  key: string;
  cert: string;
  ca: string;
}

/** `$MUSTER_CONFIG_DIR`, else `$XDG_CONFIG_HOME/muster`, else `~/.config/muster`. */
export function configDir(env: NodeJS.ProcessEnv): string {
  if (env.MUSTER_CONFIG_DIR) return env.MUSTER_CONFIG_DIR;
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'muster');
}

export function loginFiles(url: URL, env: NodeJS.ProcessEnv): LoginFiles {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const host = url.hostname.replace(/[^A-Za-z0-9.-]/g, '_');
  const dir = join(configDir(env), 'logins', `${host}_${port}`);
  return { dir, key: join(dir, 'user.key'), cert: join(dir, 'user.crt'), ca: join(dir, 'ca.pem') };
}

/** A login held for a URL: the key and certificate as PEM, with who and until when. */
export interface HeldLogin {
  files: LoginFiles;
  keyPem: string;
  certPem: string;
  /** The CA to verify the admin plane with, when login was given or found one. */
  caPem?: string;
  user: string;
  notAfter: number;
}

const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** The login held for this URL, or undefined when there is none (or its files do not parse). */
export function heldLogin(url: URL, env: NodeJS.ProcessEnv): HeldLogin | undefined {
  if (url.protocol !== 'https:') return undefined;
  const files = loginFiles(url, env);
  const keyPem = read(files.key);
  const certPem = read(files.cert);
  if (!keyPem || !certPem) return undefined;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return undefined;
  }
  const user = /URI:spiffe:\/\/[^/]+\/user\/([^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1] ?? '?';
  const caPem = read(files.ca);
  return { files, keyPem, certPem, ...(caPem ? { caPem } : {}), user, notAfter: Date.parse(cert.validTo) };
}

/** The CA a login verifies the admin plane with, as stored beside it (if any). */
export function loginCa(url: URL, env: NodeJS.ProcessEnv): string | undefined {
  return read(loginFiles(url, env).ca);
}

/** Keeps a login's files, each written atomically with mode 0600 in a folder only its owner enters. */
export async function storeLogin(
  files: LoginFiles,
  parts: { keyPem?: string; certPem: string; caPem?: string },
): Promise<void> {
  await ensurePrivateDir(files.dir);
  if (parts.keyPem) {
    // A new key: the old certificate goes first, so a certificate never sits beside a key it
    // was not issued for (a crash in between leaves no login, not a broken one).
    await rm(files.cert, { force: true });
    await writeFileAtomic(files.key, parts.keyPem, 0o600);
  }
  if (parts.caPem) await writeFileAtomic(files.ca, parts.caPem, 0o600);
  await writeFileAtomic(files.cert, parts.certPem, 0o600);
}
