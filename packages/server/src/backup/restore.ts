import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { extractArchive } from './archive.js';
import type { BackupManifest } from './format.js';
import { processesHolding } from './holders.js';
import { readRows } from './rows.js';
import { unseal } from './seal.js';
import { sqliteRows } from './store-export.js';
import { type Dialect, importRows, postgresSessions, postgresTables, schemaProblem } from './store-import.js';

export interface RestoreOptions {
  file: string;
  dataDir: string;
  /** Where the store goes: `sqlite:PATH` or `postgres://…`. */
  db: string;
  passphrase: string;
  /** Replace a data dir or store that is not empty. */
  force?: boolean;
}

export interface RestoreResult {
  manifest: BackupManifest;
  dataDir: string;
  db: string;
  ms: number;
}

/** A restore refused before anything was written, for a reason the operator can fix. */
export class RestoreRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreRefusedError';
  }
}

interface Target {
  dialect: Dialect;
  /** The SQLite file, or the PostgreSQL URL. */
  location: string;
}

const targetOf = (db: string): Target =>
  db.startsWith('sqlite:')
    ? { dialect: 'sqlite', location: resolve(db.slice('sqlite:'.length)) }
    : { dialect: 'postgres', location: db };

const sqliteFiles = (path: string) => [path, `${path}-wal`, `${path}-shm`, `${path}-journal`];

/**
 * Restores a backup into a data dir and a store. Everything is decrypted into a private folder
 * beside the data dir and checked (age's authentication, then every file's SHA-256) before
 * anything is put in place; the store is loaded in one transaction; the data dir is renamed
 * into place. A target that is not empty is refused without `force`; one a running process
 * holds is refused always.
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  const file = resolve(opts.file);
  const dataDir = resolve(opts.dataDir);
  const target = targetOf(opts.db);
  const force = opts.force === true;
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new RestoreRefusedError(`cannot read ${file} (${err.code})`);
  });
  if (!info.isFile()) throw new RestoreRefusedError(`${file} is not a file`);
  await checkTarget(dataDir, target, force);
  await mkdir(dirname(dataDir), { recursive: true, mode: 0o700 });
  const work = await mkdtemp(join(dirname(dataDir), `.${basename(dataDir)}.restore-`));
  const sqliteInside = target.dialect === 'sqlite' && dirname(target.location) === dataDir;
  const staged =
    target.dialect === 'sqlite' && !sqliteInside
      ? join(
          dirname(target.location),
          `.${basename(target.location)}.restore-${randomBytes(6).toString('hex')}`,
        )
      : undefined;
  try {
    await mkdir(join(work, 'data'), { mode: 0o700 });
    const manifest = await extractArchive(unseal(createReadStream(file), opts.passphrase), (f) =>
      join(work, ...f.path.split('/')),
    );
    checkContents(manifest);
    for (const f of manifest.files.filter((x) => x.path.startsWith('data/')))
      await chmod(join(work, ...f.path.split('/')), f.mode & 0o755);
    await checkTarget(dataDir, target, force); // again: time has passed, a server may have started
    const sqliteAt = sqliteInside ? join(work, 'data', basename(target.location)) : staged;
    await placeStore(manifest, join(work, ...manifest.store.path.split('/')), target, sqliteAt, force);
    if (staged) {
      for (const old of sqliteFiles(target.location).slice(1)) await rm(old, { force: true });
      await rename(staged, target.location);
    }
    await swapInto(join(work, 'data'), dataDir);
    return { manifest, dataDir, db: opts.db, ms: Date.now() - started };
  } finally {
    await rm(work, { recursive: true, force: true });
    if (staged) await rm(staged, { force: true });
  }
}

/** What a server needs of a backup beyond its checksums: the fleet CA, and a schema it can make. */
function checkContents(manifest: BackupManifest): void {
  for (const name of ['data/ca.pem', 'data/ca.key']) {
    if (!manifest.files.some((f) => f.path === name))
      throw new RestoreRefusedError(`the backup holds no ${name.slice(5)}: it is not a server's backup`);
  }
  const problem = schemaProblem(manifest.store.migrations, manifest.muster);
  if (problem) throw new RestoreRefusedError(`this release cannot restore the backup: ${problem}`);
}

/** The store goes in as it came (a SQLite file) or is loaded row by row into a new schema. */
async function placeStore(
  manifest: BackupManifest,
  storeFile: string,
  target: Target,
  sqliteAt: string | undefined,
  force: boolean,
): Promise<void> {
  if (target.dialect === 'sqlite' && manifest.store.form === 'sqlite') {
    await rename(storeFile, sqliteAt!);
    await chmod(sqliteAt!, 0o600);
    return;
  }
  const rows = manifest.store.form === 'rows' ? readRows(storeFile) : sqliteRows(storeFile);
  const into = target.dialect === 'sqlite' ? { dialect: target.dialect, location: sqliteAt! } : target;
  await importRows(into, manifest.store.migrations, rows, force);
  if (target.dialect === 'sqlite') await chmod(sqliteAt!, 0o600);
}

async function entries(dir: string): Promise<string[] | undefined> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw new RestoreRefusedError(`${dir} is a file, not a folder`);
    throw err;
  }
}

async function checkTarget(dataDir: string, target: Target, force: boolean): Promise<void> {
  const held = await entries(dataDir);
  const files = target.dialect === 'sqlite' ? sqliteFiles(target.location) : [];
  const holders = await processesHolding(held ? await realpath(dataDir) : dataDir, files);
  if (holders.length > 0) {
    const h = holders[0]!;
    throw new RestoreRefusedError(
      `${h.file} is open in a running process (pid ${h.pid}: ${h.command}); stop the server using ${dataDir} first`,
    );
  }
  if (held && held.length > 0 && !force)
    throw new RestoreRefusedError(
      `${dataDir} is not empty; restore into a new or empty folder, or give --force to replace what it holds`,
    );
  if (target.dialect === 'sqlite') {
    const existing = await stat(target.location).catch(() => undefined);
    if (existing && existing.size > 0 && !force && dirname(target.location) !== dataDir)
      throw new RestoreRefusedError(
        `${target.location} already holds a store; give --force to replace it, or another --db`,
      );
    return;
  }
  await checkPostgres(target.location, force);
}

async function checkPostgres(url: string, force: boolean): Promise<void> {
  const where = (() => {
    const u = new URL(url);
    return `the database ${u.pathname.slice(1)} on ${u.host}`;
  })();
  let tables: string[];
  let sessions: number;
  try {
    tables = await postgresTables(url);
    sessions = await postgresSessions(url);
  } catch (err) {
    throw new RestoreRefusedError(`cannot open ${where}: ${(err as Error).message}`);
  }
  if (sessions > 0)
    throw new RestoreRefusedError(
      `${where} is in use (${sessions} other session${sessions === 1 ? '' : 's'}, a running server?); stop what uses it first`,
    );
  if (tables.length > 0 && !force)
    throw new RestoreRefusedError(
      `${where} is not empty (${tables.length} table${tables.length === 1 ? '' : 's'}); restore into an empty database, or give --force to replace what it holds`,
    );
}

/** Puts the staged data dir where the old one was: the old one moves aside, then goes. */
async function swapInto(staged: string, dataDir: string): Promise<void> {
  const existing = await entries(dataDir);
  if (existing === undefined) {
    await rename(staged, dataDir);
    return;
  }
  const aside = join(dirname(dataDir), `.${basename(dataDir)}.replaced-${randomBytes(6).toString('hex')}`);
  await rename(dataDir, aside);
  try {
    await rename(staged, dataDir);
  } catch (err) {
    await rename(aside, dataDir);
    throw err;
  }
  await rm(aside, { recursive: true, force: true });
}
