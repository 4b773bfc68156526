import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { copyFile, lstat, mkdir, mkdtemp, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { MUSTER_VERSION } from '@muster/proto';
import { archiveBytes } from './archive.js';
import type { BackupManifest, ManifestFile } from './format.js';
import { seal } from './seal.js';
import { backupSqlite, exportPostgres, type StoreSnapshot, storeRotation } from './store-export.js';

export interface BackupOptions {
  dataDir: string;
  /** `sqlite:PATH` or `postgres://…`, as `muster server --db` takes it. */
  db: string;
  out: string;
  passphrase: string;
  /** Replace `out` if it exists. */
  force?: boolean;
  now?: () => Date;
}

export interface BackupResult {
  out: string;
  bytes: number;
  manifest: BackupManifest;
  ms: number;
}

/** A backup refused before anything was written, for a reason the operator can fix. */
export class BackupRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupRefusedError';
  }
}

const sqlitePathOf = (db: string) => (db.startsWith('sqlite:') ? db.slice('sqlite:'.length) : undefined);

/**
 * Takes an online backup of a server's store and data dir into one encrypted file: the store as
 * of one moment (SQLite's backup API, or one PostgreSQL snapshot), the data dir's keys and
 * certificates, a manifest with every file's SHA-256. The file appears whole or not at all.
 */
export async function takeBackup(opts: BackupOptions): Promise<BackupResult> {
  const started = Date.now();
  const dataDir = resolve(opts.dataDir);
  const out = resolve(opts.out);
  await checkSources(dataDir, opts.db, out, opts.force === true);
  const work = await mkdtemp(join(dirname(out), '.muster-backup-'));
  const temp = join(dirname(out), `.${randomBytes(6).toString('hex')}.muster-backup.tmp`);
  try {
    const { snapshot, files, storeFile } = await copyConsistently(dataDir, opts.db, work);
    const manifest: BackupManifest = {
      format: 1,
      muster: MUSTER_VERSION,
      createdAt: (opts.now?.() ?? new Date()).toISOString(),
      dialect: storeFile.endsWith('.db') ? 'sqlite' : 'postgres',
      store: {
        form: storeFile.endsWith('.db') ? 'sqlite' : 'rows',
        path: storeFile,
        migrations: snapshot.migrations,
        ...(snapshot.tables ? { tables: snapshot.tables } : {}),
      },
      files,
    };
    const sealed = await seal(
      archiveBytes(manifest, (f) => join(work, f.path)),
      opts.passphrase,
    );
    await pipeline(sealed, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
    await syncFile(temp);
    await rename(temp, out);
    await syncFile(dirname(out));
    return { out, bytes: (await stat(out)).size, manifest, ms: Date.now() - started };
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(temp, { force: true });
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function checkSources(dataDir: string, db: string, out: string, force: boolean): Promise<void> {
  for (const name of ['ca.pem', 'ca.key']) {
    const info = await stat(join(dataDir, name)).catch(() => undefined);
    if (!info?.isFile())
      throw new BackupRefusedError(
        `${dataDir} is not a Muster server's data dir (it has no ${name}); give the server's --data-dir`,
      );
  }
  const sqlite = sqlitePathOf(db);
  if (sqlite && !(await stat(sqlite).catch(() => undefined))?.isFile())
    throw new BackupRefusedError(`there is no store at ${sqlite}; give the server's --db`);
  if (out === dataDir || out.startsWith(dataDir + sep))
    throw new BackupRefusedError(
      `--out ${out} is inside the data dir; put backups elsewhere (the next backup would copy this one)`,
    );
  const existing = await lstat(out).catch(() => undefined);
  if (existing && (!force || !existing.isFile()))
    throw new BackupRefusedError(`${out} already exists; give --force to replace it`);
  if (!(await stat(dirname(out)).catch(() => undefined))?.isDirectory())
    throw new BackupRefusedError(`the folder ${dirname(out)} for --out does not exist`);
}

/**
 * The store's snapshot first, then the data dir's files. Files the store refers to (a rotated
 * CA) are written before the store records them, so a copy taken after the snapshot holds
 * them, unless a rotation moved on meanwhile: then the snapshot and the copy disagree, and
 * both are taken again.
 */
async function copyConsistently(dataDir: string, db: string, work: string) {
  for (let attempt = 1; ; attempt++) {
    await rm(join(work, 'store'), { recursive: true, force: true });
    await rm(join(work, 'data'), { recursive: true, force: true });
    await mkdir(join(work, 'store'), { mode: 0o700 });
    const sqlite = sqlitePathOf(db);
    const storeFile = sqlite ? 'store/muster.db' : 'store/rows.jsonl';
    const snapshot: StoreSnapshot = sqlite
      ? await backupSqlite(sqlite, join(work, storeFile))
      : await exportPostgres(db, join(work, storeFile));
    const data = await copyDataFiles(dataDir, join(work, 'data'), sqlite);
    const rotation = await storeRotation(db);
    if (rotation === snapshot.rotation || attempt === 3) {
      if (rotation !== snapshot.rotation)
        throw new Error('a CA rotation kept changing state while the backup was taken; try again');
      const store = await describe(work, storeFile, 0o600);
      return { snapshot, files: [...data, store], storeFile };
    }
  }
}

/**
 * Copies every regular file of the data dir into `to`, keeping its mode: keys, certificates,
 * the admin token, the fleet root. Left out: the SQLite store (copied by the backup API
 * instead, never as a file), and dot files, which are temporary.
 */
async function copyDataFiles(dataDir: string, to: string, sqlite: string | undefined) {
  const skip = new Set(['muster.db', 'muster.db-wal', 'muster.db-shm', 'muster.db-journal']);
  const store = sqlite ? resolve(sqlite) : undefined;
  const files: ManifestFile[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.name.startsWith('.') || (dir === dataDir && skip.has(entry.name))) continue;
      if (store && (path === store || path.startsWith(`${store}-`))) continue;
      if (entry.isDirectory()) await walk(path);
      if (!entry.isFile()) continue;
      const rel = relative(dataDir, path).split(sep).join('/');
      const copy = join(to, ...rel.split('/'));
      await mkdir(dirname(copy), { recursive: true, mode: 0o700 });
      await copyFile(path, copy, constants.COPYFILE_EXCL);
      files.push(await describe(dirname(to), `data/${rel}`, (await stat(path)).mode & 0o777));
    }
  };
  await walk(dataDir);
  return files;
}

async function describe(work: string, path: string, mode: number): Promise<ManifestFile> {
  const file = join(work, ...path.split('/'));
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { path, size, mode, sha256: hash.digest('hex') };
}
