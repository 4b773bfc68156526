import { readFileSync } from 'node:fs';
import { type RawSettings, type SettingSpec, UsageError } from '@muster/host';
import type { Command } from '../command.js';
import { displayPath, printJson } from '../output.js';
import { loadServer } from './server.js';

const PASSPHRASE_FILE: SettingSpec = {
  flag: 'passphrase-file',
  kind: 'string',
  value: 'FILE',
  help: 'a file holding the passphrase the backup is encrypted with (required; one line)',
};
const JSON_FLAG: SettingSpec = { flag: 'json', kind: 'boolean', help: 'print the result as JSON' };

/** `--data-dir` and `--db` as `muster server` reads them, MUSTER_DATA_DIR and MUSTER_DB included. */
async function storeSettings(): Promise<SettingSpec[]> {
  const { SERVER_SETTINGS } = await loadServer();
  return SERVER_SETTINGS.filter((s) => s.flag === 'data-dir' || s.flag === 'db');
}

/** The passphrase: the file's first line, which must not be empty. */
function readPassphrase(values: RawSettings): string {
  const file = values['passphrase-file'] as string | undefined;
  if (file === undefined)
    throw new UsageError('--passphrase-file is required: the backup is encrypted with it');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--passphrase-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
  }
  const passphrase = text.split(/\r?\n/)[0] ?? '';
  if (passphrase.trim() === '') throw new UsageError(`--passphrase-file: ${file} is empty`);
  return passphrase;
}

/** Where the store is: `--db`, or the SQLite file in the data dir, as the server decides. */
async function storeOf(values: RawSettings): Promise<{ dataDir: string; db: string }> {
  const { serverConfigFrom } = await loadServer();
  const config = serverConfigFrom({ 'data-dir': values['data-dir'], db: values.db });
  return { dataDir: config.dataDir, db: config.db };
}

const shownDb = (db: string) =>
  db.startsWith('sqlite:') ? db : `postgres ${new URL(db).host}${new URL(db).pathname}`;

function size(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The refusals of backup and restore are the operation failing (exit 1), said in one line. */
function failed(err: unknown, what: string): never {
  const e = err as Error;
  const known = ['BackupRefusedError', 'RestoreRefusedError', 'DamagedBackupError', 'WrongPassphraseError'];
  if (known.includes(e.name)) throw new Error(`${what}: ${e.message}; nothing was written`);
  throw err;
}

export const backupCommand: Command = {
  path: ['backup'],
  summary: "take an online backup of the server's store and keys, encrypted with a passphrase",
  details:
    "Run it on the server's host, with the server running or not. It copies the store as of one\n" +
    "moment (SQLite's online backup API; on PostgreSQL one REPEATABLE READ snapshot, written as\n" +
    "rows), the data dir's keys and certificates (the fleet CA, the server's identity, the ledger\n" +
    'key, the fleet root, the admin token) and a manifest with the SHA-256 of each, into one file\n' +
    'encrypted with age (scrypt passphrase). Agents enrolled before the backup reconnect to a\n' +
    'restored server without a new token.\n\n' +
    'Example:\n  muster backup --data-dir /var/lib/muster --out /backups/muster-$(date +%F).age --passphrase-file /etc/muster/backup.pass',
  settings: async () => [
    { flag: 'out', kind: 'string', value: 'FILE', help: 'where to write the backup (required; mode 0600)' },
    PASSPHRASE_FILE,
    ...(await storeSettings()),
    { flag: 'force', kind: 'boolean', help: 'replace FILE if it exists' },
    JSON_FLAG,
  ],
  async run({ values }) {
    if (values.out === undefined) throw new UsageError('--out is required: where to write the backup');
    const passphrase = readPassphrase(values);
    const { dataDir, db } = await storeOf(values);
    const { takeBackup } = await loadServer();
    const out = values.out as string;
    const result = await takeBackup({ dataDir, db, out, passphrase, force: values.force === true }).catch(
      (err: unknown) => failed(err, `cannot back up to ${out}`),
    );
    if (values.json) {
      printJson({ out: result.out, bytes: result.bytes, ms: result.ms, manifest: result.manifest });
      return 0;
    }
    const m = result.manifest;
    const dataFiles = m.files.filter((f) => f.path.startsWith('data/')).length;
    process.stdout.write(
      `Backup written to ${displayPath(result.out)} (${size(result.bytes)}, in ${(result.ms / 1000).toFixed(1)} s): ` +
        `the ${m.dialect} store ${shownDb(db)} (schema ${m.store.migrations.at(-1)}) and ${dataFiles} files of ${displayPath(dataDir)}.\n` +
        `Restore it with: muster restore ${displayPath(result.out)} --data-dir DIR [--db URL] --passphrase-file FILE\n` +
        'Keep the passphrase apart from the backup: without it the backup cannot be opened.\n',
    );
    return 0;
  },
};

export const restoreCommand: Command = {
  path: ['restore'],
  args: 'FILE',
  summary: 'restore a backup into an empty data dir and store',
  details:
    'Decrypts the backup beside the target and checks every file against the manifest before\n' +
    'anything is put in place; the store is loaded in one transaction and the data dir renamed\n' +
    'into place. A data dir or database that is not empty is refused without --force; one a\n' +
    'running server holds is refused always. A backup from one dialect restores into either\n' +
    '(--db postgres://… loads a SQLite backup into PostgreSQL).\n\n' +
    'Example:\n  muster restore /backups/muster-2026-12-01.age --data-dir /var/lib/muster --passphrase-file /etc/muster/backup.pass\n' +
    '  muster server --data-dir /var/lib/muster',
  settings: async () => [
    PASSPHRASE_FILE,
    ...(await storeSettings()),
    { flag: 'force', kind: 'boolean', help: 'replace a data dir or database that is not empty' },
    JSON_FLAG,
  ],
  async run({ values, positionals }) {
    const [file, extra] = positionals;
    if (file === undefined) throw new UsageError('expected the backup FILE to restore');
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
    if (values['data-dir'] === undefined)
      throw new UsageError('--data-dir is required: the folder to restore the data dir into');
    const passphrase = readPassphrase(values);
    const { dataDir, db } = await storeOf(values);
    const { restoreBackup } = await loadServer();
    const result = await restoreBackup({ file, dataDir, db, passphrase, force: values.force === true }).catch(
      (err: unknown) => failed(err, `cannot restore ${file}`),
    );
    if (values.json) {
      printJson({
        dataDir: result.dataDir,
        db: shownDb(result.db),
        ms: result.ms,
        manifest: result.manifest,
      });
      return 0;
    }
    const m = result.manifest;
    const dbFlag =
      db === `sqlite:${dataDir}/muster.db` ? '' : ` --db ${db.startsWith('sqlite:') ? db : 'URL'}`;
    process.stdout.write(
      `Restored ${displayPath(file)} (made by Muster ${m.muster} at ${m.createdAt}, from a ${m.dialect} store) ` +
        `into ${displayPath(dataDir)}, store ${shownDb(db)} (schema ${m.store.migrations.at(-1)}).\n` +
        `Start the server on it: muster server --data-dir ${displayPath(dataDir)}${dbFlag}\n`,
    );
    return 0;
  },
};
