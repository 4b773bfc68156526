import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  canonicalJson,
  type Job,
  leafHash,
  type PlacementCandidate,
  place,
  placedEntryData,
  verifyInclusion,
} from '@muster/proto';
import { appendEntries, LedgerService, openStore, systemClock } from '@muster/server';
import { emit, progress } from './support.js';

export interface JobsOptions {
  nodes: number;
  /** Entries already in the log before the placement, so the proof has a realistic depth. */
  entries: number;
}

const GiB = 2 ** 30;

function candidates(n: number, now: number): PlacementCandidate[] {
  return Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    name: `node-${i}`,
    profile: 'default',
    labels: { zone: `z${i % 5}`, 'muster.io/cost': String(1 + (i % 7)) },
    status: i % 50 === 0 ? 'offline' : 'ok',
    facts: { cpus: 8, memoryBytes: 16 * GiB },
    latest: {
      sentAt: new Date(now - (i % 10) * 1000).toISOString(),
      load: [((i * 37) % 900) / 100, 1, 1],
      cpuPct: (i * 13) % 100,
      memory: { totalBytes: 16 * GiB, availableBytes: ((i * 7919) % 16) * GiB + 123_456_789 },
      disks: [{ mount: '/var', totalBytes: 500 * GiB, freeBytes: ((i * 31) % 500) * GiB }],
    },
    history: [],
  }));
}

/**
 * The `job.placed` entry at fleet scale, through the code the server runs: place one job over N
 * candidates, build the ledgered form, append it to a real SQLite ledger, then fetch the entry
 * and its inclusion proof and verify them. Prints the entry size beside place()'s own output.
 */
export async function jobsScenario(opts: JobsOptions): Promise<void> {
  const now = Date.now();
  const job: Job = {
    v: 1,
    id: randomUUID(),
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 600_000).toISOString(),
    operator: 'bench',
    action: 'backup',
    args: {},
    select: { all: true },
    count: 100,
    spread: 'zone',
    require: {
      minFreeMemoryBytes: 4 * GiB,
      maxLoad1: 6,
      minFreeDiskBytes: { mount: '/var', bytes: 50 * GiB },
    },
  };
  const nodes = candidates(opts.nodes, now);
  const placeStart = performance.now();
  const placement = place({ job, candidates: nodes, now });
  const data = placedEntryData(job, [{ operator: 'bench', signature: 'A'.repeat(88) }], placement, now);
  emit('jobs', 'place_and_entry_ms', performance.now() - placeStart, {
    nodes: opts.nodes,
    chosen: placement.chosen.length,
    unit: 'ms for place() and the ledgered form, pure (no store, no HTTP)',
  });
  emit('jobs', 'place_output_bytes', Buffer.byteLength(JSON.stringify(placement)), { nodes: opts.nodes });
  const dir = await mkdtemp(join(tmpdir(), 'muster-bench-jobs-'));
  const store = await openStore(`sqlite:${join(dir, 'jobs.db')}`);
  try {
    progress(`growing the log to ${opts.entries} entries`);
    for (let size = 0; size < opts.entries; size += 5000)
      await store.write((trx) =>
        appendEntries(
          trx,
          Array.from({ length: Math.min(5000, opts.entries - size) }, (_, j) => ({
            ts: now,
            kind: 'token.created',
            actor: 'admin',
            subject: `token:${size + j}`,
            data: { uses: 1 },
          })),
        ),
      );
    const appendStart = performance.now();
    const [seq] = await store.write((trx) =>
      appendEntries(trx, [
        { ts: now, kind: 'job.placed', actor: 'user:bench', subject: `job:${job.id}`, data },
      ]),
    );
    emit('jobs', 'entry_append_ms', performance.now() - appendStart, {
      unit: 'ms to append and commit the entry',
    });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const ledger = new LedgerService({
      db: store.db,
      clock: systemClock,
      origin: 'bench/jobs',
      privateKey,
      publicKey,
    });
    const { checkpoint } = await ledger.checkpoint();
    const samples = 50;
    let verified = 0;
    let bytes = 0;
    const start = performance.now();
    for (let k = 0; k < samples; k++) {
      const entry = (await ledger.entries(seq!, seq! + 1)).entries[0]!.entry;
      const proof = await ledger.inclusion(seq!, checkpoint.size);
      const hashes = proof.hashes.map((h) => Buffer.from(h, 'base64'));
      if (verifyInclusion(seq!, checkpoint.size, leafHash(entry), hashes, checkpoint.root)) verified++;
      bytes = Buffer.byteLength(entry);
    }
    emit('jobs', 'entry_bytes', bytes, {
      nodes: opts.nodes,
      canonicalDataBytes: Buffer.byteLength(canonicalJson(data)),
      unit: 'bytes of the job.placed entry as hashed',
    });
    emit('jobs', 'entry_fetch_and_proof_ms', (performance.now() - start) / samples, {
      entries: checkpoint.size,
      verified: `${verified}/${samples}`,
      goal: '< 5',
      unit: 'ms to read the entry and its inclusion proof from the store and verify both',
    });
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
