import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leafHash, openCheckpoint, parseVerifierKey, verifyExport, verifyInclusion } from '@muster/proto';
import { appendEntries, LedgerService, openStore, systemClock } from '@muster/server';
import { emit, progress } from './support.js';

export interface LedgerOptions {
  /** Concurrent appenders for the durable append rate. */
  writers: number;
  durationMs: number;
  /** Size of the log that proof and verify times are measured at. */
  entries: number;
}

const decision = (i: number) => ({
  ts: Date.now(),
  kind: 'token.created',
  actor: 'admin',
  subject: `token:tok_${i.toString(16).padStart(16, '0')}`,
  data: { profile: 'web', labels: { env: 'bench' }, uses: 1, expiresAt: 1_800_000_000_000, name: null },
});

/**
 * The ledger on the embedded store, through the code the server runs: durable appends/s with
 * many concurrent writers (each waits for its own commit: group commit), beside the raw durable
 * SQLite rate of one row per transaction; then inclusion-proof time and export-verify time on
 * a log of `entries` entries.
 */
export async function ledgerScenario(opts: LedgerOptions): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'muster-bench-ledger-'));
  try {
    const raw = rawSqliteRate(join(dir, 'raw.db'), 2000);
    emit('ledger', 'raw_sqlite_durable_commits_per_sec', raw, {
      unit: 'one row per transaction, synchronous=FULL, same run',
    });

    const store = await openStore(`sqlite:${join(dir, 'ledger.db')}`);
    try {
      let appended = 0;
      let i = 0;
      const end = performance.now() + opts.durationMs;
      await Promise.all(
        Array.from({ length: opts.writers }, async () => {
          while (performance.now() < end) {
            const n = i++;
            await store.write((trx) => appendEntries(trx, [decision(n)]));
            appended++;
          }
        }),
      );
      emit('ledger', 'durable_appends_per_sec', appended / (opts.durationMs / 1000), {
        writers: opts.writers,
        goal: '>= 10000',
        unit: 'appends/s, each committed (group commit) before its writer goes on',
      });

      progress(`growing the log to ${opts.entries} entries for proof and verify timings`);
      for (let size = appended; size < opts.entries; ) {
        const batch = Math.min(5000, opts.entries - size);
        await store.write((trx) =>
          appendEntries(
            trx,
            Array.from({ length: batch }, (_, j) => decision(size + j)),
          ),
        );
        size += batch;
        if ((size / 5000) % 20 === 0) progress(`  ${size}/${opts.entries}`);
      }

      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const ledger = new LedgerService({
        db: store.db,
        clock: systemClock,
        origin: 'bench/ledger',
        privateKey,
        publicKey,
      });
      const { note, checkpoint } = await ledger.checkpoint();
      const samples = 500;
      const picked = [];
      for (let k = 0; k < samples; k++) {
        const seq = Math.floor(Math.random() * checkpoint.size);
        picked.push({ seq, leaf: leafHash((await ledger.entries(seq, seq + 1)).entries[0]!.entry) });
      }
      let checked = 0;
      const start = performance.now();
      for (const { seq, leaf } of picked) {
        const proof = await ledger.inclusion(seq, checkpoint.size);
        const hashes = proof.hashes.map((h) => Buffer.from(h, 'base64'));
        if (verifyInclusion(seq, checkpoint.size, leaf, hashes, checkpoint.root)) checked++;
      }
      emit('ledger', 'inclusion_proof_ms', (performance.now() - start) / samples, {
        entries: checkpoint.size,
        verified: `${checked}/${samples}`,
        goal: '< 1',
        unit: 'ms per proof: read from the store (O(log n) stored subtree hashes) and verified',
      });

      progress('exporting and verifying the whole log');
      const lines: string[] = [];
      const leaves: Buffer[] = [];
      for (let s = 0; s < checkpoint.size; ) {
        const page = await ledger.entries(s, checkpoint.size);
        for (const e of page.entries) {
          lines.push(e.entry);
          leaves.push(Buffer.from(e.leafHash, 'base64'));
        }
        s += page.entries.length;
      }
      const header = JSON.stringify({
        vkey: ledger.vkey,
        checkpoint: note,
        leafHashes: Buffer.concat(leaves).toString('base64'),
      });
      const verifyStart = performance.now();
      const result = await verifyExport(
        (async function* () {
          yield header;
          yield* lines;
        })(),
        ledger.vkey,
      );
      emit('ledger', 'export_verify_sec', (performance.now() - verifyStart) / 1000, {
        entries: checkpoint.size,
        ok: result.ok,
        goal: '< 10',
      });
      void openCheckpoint(note, parseVerifierKey(ledger.vkey));
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The limit: one row per durable transaction, straight into better-sqlite3. */
function rawSqliteRate(path: string, ms: number): number {
  const require = createRequire(import.meta.url);
  const major = Number(process.versions.node.split('.')[0]);
  const Database = require(major >= 22 ? 'better-sqlite3' : 'better-sqlite3-node20');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('create table t (id integer primary key, v text)');
  const insert = db.prepare('insert into t (v) values (?)');
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    insert.run('x'.repeat(200));
    n++;
  }
  db.close();
  return n / ((performance.now() - start) / 1000);
}
