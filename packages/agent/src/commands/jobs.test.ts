import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { jsonLog } from '@muster/host';
import {
  canonicalJson,
  checkpointBody,
  consistencyRanges,
  formatPublicKey,
  inclusionRanges,
  type Job,
  type JobShardDelivery,
  leafHash,
  type Policy,
  parseVerifierKey,
  place,
  placedEntryData,
  rootOf,
  signJob,
  signNote,
  verifierKey,
} from '@muster/proto';
import { Witness } from '../witness.js';
import { JobShardGate } from './jobs.js';

// The agent's gate for job shards with its real witness on disk: a shard runs only when its
// job.placed entry proves into a checkpoint consistent with the one the node holds.

const operatorKey = generateKeyPairSync('ed25519').privateKey;
const ledgerKeys = generateKeyPairSync('ed25519');
const ORIGIN = 'test/ledger';
const vkey = verifierKey(ORIGIN, ledgerKeys.publicKey);
const now = Date.now();
const node = { id: 'node-0', name: 'n0', profile: 'default', labels: {} };
const policy: Policy = {
  version: 1,
  operators: [{ name: 'alice', publicKey: formatPublicKey(createPublicKey(operatorKey)), profiles: ['*'] }],
  profiles: { default: { actions: { backup: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 1024 } } } },
};
const job: Job = {
  v: 1,
  id: 'job-gate-0001',
  nonce: 'G'.repeat(22),
  issuedAt: new Date(now).toISOString(),
  expiresAt: new Date(now + 600_000).toISOString(),
  operator: 'alice',
  action: 'backup',
  args: {},
  select: { all: true },
  count: 1,
};
const signature = signJob(job, operatorKey);
const candidate = {
  ...node,
  status: 'ok' as const,
  facts: { cpus: 2, memoryBytes: 1e9 },
  latest: {
    sentAt: new Date(now).toISOString(),
    load: [0.1, 0, 0],
    cpuPct: 1,
    memory: { totalBytes: 1e9, availableBytes: 5e8 },
    disks: [],
  },
  history: [],
};
const data = placedEntryData(
  job,
  [{ operator: 'alice', signature }],
  place({ job, candidates: [candidate], now }),
  now,
);
const entry = canonicalJson({
  v: 1,
  seq: 1,
  ts: new Date(now).toISOString(),
  kind: 'job.placed',
  actor: 'user:alice',
  subject: `job:${job.id}`,
  data,
});

/** A log over these entries: its signed checkpoint at a size, and inclusion and consistency proofs. */
function log(entries: string[]) {
  const leaves = entries.map((e) => leafHash(e));
  const hash = (r: { start: number; end: number }) => rootOf(leaves.slice(r.start, r.end)).toString('base64');
  return {
    note: (size: number) =>
      signNote(
        checkpointBody({ origin: ORIGIN, size, root: rootOf(leaves.slice(0, size)) }),
        ORIGIN,
        ledgerKeys.privateKey,
        ledgerKeys.publicKey,
      ),
    inclusion: (seq: number, size: number) => inclusionRanges(seq, size).map(hash),
    consistency: (from: number, to: number) => consistencyRanges(from, to).map(hash),
  };
}
const honestLog = log(['{"a":1}', entry, '{"b":2}', '{"c":3}', '{"d":4}']);
const forkLog = log(['{"a":1}', '{"fork":1}', '{"b":2}', '{"c":3}', '{"d":4}']);
const delivery = (l: ReturnType<typeof log>, size: number): JobShardDelivery => ({
  signed: { job, signature },
  shard: 0,
  entry,
  seq: 1,
  proof: l.inclusion(1, size),
  checkpoint: l.note(size),
});

describe('JobShardGate with a real witness', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muster-gate-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function gate(name: string, served: ReturnType<typeof log>) {
    const dataDir = join(dir, name);
    await mkdir(dataDir);
    const witness = new Witness(
      dataDir,
      vkey,
      async (from, to) => served.consistency(from, to),
      jsonLog('silent', {}),
    );
    return {
      witness,
      dataDir,
      gate: new JobShardGate({
        node,
        verifier: parseVerifierKey(vkey),
        witness,
        fetchConsistency: async (from, to) => served.consistency(from, to),
        skewAllowanceMs: 300_000,
        now: () => now,
      }),
    };
  }

  test('an honest shard runs, and its checkpoint becomes the one held', async () => {
    const { gate: g, witness } = await gate('honest', honestLog);
    await witness.observe(honestLog.note(2));
    const decision = await g.decide(delivery(honestLog, 4), policy);
    assert.deepEqual(decision, { run: true, argv: ['true'] });
    assert.equal((await witness.held())?.size, 4);
  });

  test('a checkpoint older than the one held must be its prefix', async () => {
    const { gate: g, witness } = await gate('older', honestLog);
    await witness.observe(honestLog.note(5));
    assert.deepEqual(await g.decide(delivery(honestLog, 3), policy), { run: true, argv: ['true'] });
  });

  test('an entry in a forked log, not consistent with the checkpoint held, is rejected and kept as evidence', async () => {
    // The node holds the fork's checkpoint at 3; the job proves into the honest log at 4.
    const { gate: g, witness, dataDir } = await gate('fork', forkLog);
    await witness.observe(forkLog.note(3));
    const decision = await g.decide(delivery(honestLog, 4), policy);
    assert.equal(decision.run, false);
    assert.match((decision as { reason: string }).reason, /not consistent with checkpoint 3 this node holds/);
    assert.equal((await readdir(join(dataDir, 'evidence'))).length, 1);
  });

  test('an older checkpoint from another log than the one held is rejected', async () => {
    const { gate: g, witness } = await gate('fork-older', forkLog);
    await witness.observe(forkLog.note(5));
    const decision = await g.decide(delivery(honestLog, 3), policy);
    assert.equal(decision.run, false);
    assert.match((decision as { reason: string }).reason, /not consistent with checkpoint 5/);
  });

  test('an altered entry is rejected before any checkpoint is witnessed', async () => {
    const { gate: g, witness } = await gate('altered', honestLog);
    const altered = {
      ...delivery(honestLog, 4),
      entry: entry.replace('"action":"backup"', '"action":"wipe"'),
    };
    const decision = await g.decide(altered, policy);
    assert.equal(decision.run, false);
    assert.match((decision as { reason: string }).reason, /not in the ledger|canonical/);
    assert.equal(await witness.held(), undefined);
  });
});
