import { posix } from 'node:path';

/*
 * A backup, once decrypted, is one stream: a header line naming the manifest's length and
 * SHA-256, the manifest (JSON), a newline, then the bytes of every file the manifest lists, in
 * its order and of the sizes it gives. Nothing follows the last file.
 *
 *   MUSTER-BACKUP/1 <manifest bytes> <manifest sha256 hex>\n
 *   {"format":1,…}\n
 *   <file 1><file 2>…
 *
 * The whole is encrypted with age (scrypt passphrase recipient), whose STREAM payload is
 * authenticated chunk by chunk with a final-chunk flag, so a truncated or changed file fails to
 * decrypt; the checksums here also catch a backup that was written wrongly in the first place.
 */

export const HEADER_PREFIX = 'MUSTER-BACKUP/1';
/** A header line is short; a longer first line is not a Muster backup. */
export const MAX_HEADER_BYTES = 200;
/** The manifest lists a few files; anything this large was not written by `muster backup`. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The store inside a backup: a SQLite database made by the online backup API, or rows. */
export type StoreForm = 'sqlite' | 'rows';

export interface ManifestFile {
  /** `data/<name>` for the data dir's files, `store/<name>` for the store. */
  path: string;
  size: number;
  /** The file's mode bits as they were (0600 for keys), restored as they were. */
  mode: number;
  sha256: string;
}

/** What a backup holds, written before the files so a restore knows what to expect. */
export interface BackupManifest {
  format: 1;
  /** The Muster release that made it. */
  muster: string;
  createdAt: string;
  /** The dialect of the store it was taken from. */
  dialect: 'sqlite' | 'postgres';
  store: {
    form: StoreForm;
    path: string;
    /** The schema migrations applied to the store, in order: its schema version. */
    migrations: string[];
    /** Rows per table, for a `rows` store. */
    tables?: Record<string, number>;
  };
  files: ManifestFile[];
}

/** A backup that cannot be read as one: damaged, truncated, or not a Muster backup at all. */
export class DamagedBackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DamagedBackupError';
  }
}

export function headerLine(manifestBytes: number, manifestSha256: string): string {
  return `${HEADER_PREFIX} ${manifestBytes} ${manifestSha256}\n`;
}

export function parseHeaderLine(line: string): { bytes: number; sha256: string } {
  const match = /^MUSTER-BACKUP\/(\d+) (\d{1,10}) ([0-9a-f]{64})$/.exec(line);
  if (!match) throw new DamagedBackupError('it decrypts, but is not a Muster backup (no backup header)');
  if (match[1] !== '1')
    throw new DamagedBackupError(
      `it is a Muster backup of format ${match[1]}, which this release cannot read`,
    );
  const bytes = Number(match[2]);
  if (bytes > MAX_MANIFEST_BYTES) throw new DamagedBackupError('its manifest is impossibly large');
  return { bytes, sha256: match[3]! };
}

const SHA256_RE = /^[0-9a-f]{64}$/;

/** A file path a restore may write: relative, normalised, under `data/` or `store/`, no `..`. */
function safePath(path: unknown): path is string {
  if (typeof path !== 'string' || path.length === 0 || path.length > 512) return false;
  if (path.includes('\0') || path.includes('\\') || posix.normalize(path) !== path) return false;
  const [top, ...rest] = path.split('/');
  return (top === 'data' || top === 'store') && rest.length > 0 && !rest.some((p) => p === '..' || p === '');
}

/** Checks the manifest's shape; anything else means the backup is not one `muster backup` wrote. */
export function parseManifest(text: string): BackupManifest {
  let m: BackupManifest;
  try {
    m = JSON.parse(text) as BackupManifest;
  } catch {
    throw new DamagedBackupError('its manifest is not JSON');
  }
  const bad = (what: string): never => {
    throw new DamagedBackupError(`its manifest is malformed (${what})`);
  };
  if (typeof m !== 'object' || m === null || m.format !== 1) bad('format');
  if (typeof m.muster !== 'string' || typeof m.createdAt !== 'string') bad('release or time');
  if (m.dialect !== 'sqlite' && m.dialect !== 'postgres') bad('dialect');
  const store = m.store;
  if (typeof store !== 'object' || store === null) bad('store');
  if (store.form !== 'sqlite' && store.form !== 'rows') bad('store form');
  if (!Array.isArray(store.migrations) || !store.migrations.every((n) => typeof n === 'string'))
    bad('migrations');
  if (!Array.isArray(m.files)) bad('files');
  const seen = new Set<string>();
  for (const f of m.files) {
    if (typeof f !== 'object' || f === null || !safePath(f.path) || seen.has(f.path)) bad('a file path');
    if (!Number.isSafeInteger(f.size) || f.size < 0) bad(`the size of ${f.path}`);
    if (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o777) bad(`the mode of ${f.path}`);
    if (typeof f.sha256 !== 'string' || !SHA256_RE.test(f.sha256)) bad(`the checksum of ${f.path}`);
    seen.add(f.path);
  }
  if (!m.files.some((f) => f.path === store.path && f.path.startsWith('store/'))) bad('no store file');
  return m;
}
