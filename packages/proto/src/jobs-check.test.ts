import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Policy } from './commands.js';
import { canonicalJson } from './jcs.js';
import { type Job, signJob } from './jobs.js';
import { checkJobShard, type JobShardDelivery, ShardRefused } from './jobs-check.js';
import { placedEntryData } from './jobs-ledger.js';
import { inclusionRanges, leafHash, rootOf } from './merkle.js';
import { checkpointBody, parseVerifierKey, signNote, verifierKey } from './note.js';
import { place } from './placement.js';
import { formatPublicKey } from './signatures.js';

// The checks a node makes before it runs a shard, against a real RFC 6962 log and signed
// checkpoint: a job whose entry is missing, altered, for another node or outside the
// checkpoint is refused with the reason; the honest one passes.

const operatorKey = generateKeyPairSync('ed25519').privateKey;
const ledgerKeys = generateKeyPairSync('ed25519');
const ORIGIN = 'test/ledger';
const verifier = parseVerifierKey(verifierKey(ORIGIN, ledgerKeys.publicKey));
const now = Date.parse('2026-12-01T12:00:00Z');
const policy: Policy = {
  version: 1,
  operators: [{ name: 'alice', publicKey: formatPublicKey(createPublicKey(operatorKey)), profiles: ['*'] }],
  profiles: {
    default: {
      actions: {
        backup: {
          argv: ['true', '{dest}'],
          args: { dest: { pattern: '[a-z]+' } },
          timeoutSec: 5,
          maxOutputBytes: 1024,
        },
      },
    },
  },
};
const nodes = ['n1', 'n2', 'n3'].map((name, i) => ({
  id: `node-${i}`,
  name,
  profile: 'default',
  labels: { zone: `z${i}` },
}));
const job: Job = {
  v: 1,
  id: 'job-check-0001',
  nonce: 'N'.repeat(22),
  issuedAt: new Date(now).toISOString(),
  expiresAt: new Date(now + 600_000).toISOString(),
  operator: 'alice',
  action: 'backup',
  args: { dest: 'vault' },
  select: { labels: { zone: 'z0' } },
  count: 1,
};

function ledgerWith(entries: string[]) {
  const leaves = entries.map((e) => leafHash(e));
  const root = rootOf(leaves);
  const note = signNote(
    checkpointBody({ origin: ORIGIN, size: leaves.length, root }),
    ORIGIN,
    ledgerKeys.privateKey,
    ledgerKeys.publicKey,
  );
  const proof = (seq: number) =>
    inclusionRanges(seq, leaves.length).map((r) => rootOf(leaves.slice(r.start, r.end)).toString('base64'));
  return { note, proof };
}

function honest(): JobShardDelivery {
  const candidates = nodes.map((n) => ({
    ...n,
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
  }));
  const signature = signJob(job, operatorKey);
  const data = placedEntryData(job, [{ operator: 'alice', signature }], place({ job, candidates, now }), now);
  const entry = canonicalJson({
    v: 1,
    seq: 2,
    ts: new Date(now).toISOString(),
    kind: 'job.placed',
    actor: 'user:alice',
    subject: `job:${job.id}`,
    data,
  });
  const log = ledgerWith(['{"a":1}', '{"b":2}', entry, '{"c":3}']);
  return { signed: { job, signature }, shard: 0, entry, seq: 2, proof: log.proof(2), checkpoint: log.note };
}

const check = (d: JobShardDelivery, node = nodes[0]!) =>
  checkJobShard(d, { node, policy, verifier, now, skewAllowanceMs: 300_000 });

function refused(d: JobShardDelivery, code: ShardRefused['code'], node = nodes[0]!): string {
  try {
    check(d, node);
  } catch (err) {
    assert.ok(err instanceof ShardRefused, String(err));
    assert.equal(err.code, code, err.message);
    return err.message;
  }
  assert.fail('the shard was not refused');
}

describe('checkJobShard', () => {
  test('an honest delivery passes: the argv to run and the checkpoint to witness', () => {
    const { argv, checkpoint } = check(honest());
    assert.deepEqual(argv, ['true', 'vault']);
    assert.equal(checkpoint.size, 4);
  });

  test('a job no operator signed (or altered after signing) is refused', () => {
    const d = honest();
    assert.match(
      refused(
        {
          ...d,
          signed: {
            job: { ...job, args: { dest: 'evil' } },
            signature: (d.signed as { signature: string }).signature,
          },
        },
        'signature',
      ),
      /no valid signature/,
    );
  });

  test('a node outside select refuses, even when the entry names it', () => {
    refused(honest(), 'select', nodes[1]!);
  });

  test('the entry missing: something else in its place is refused', () => {
    const d = honest();
    const other = canonicalJson({
      v: 1,
      seq: 2,
      ts: 'x',
      kind: 'command.issued',
      actor: 'system',
      subject: `job:${job.id}`,
      data: {},
    });
    assert.match(refused({ ...d, entry: other }, 'entry'), /not the job\.placed entry/);
  });

  test('an altered entry (another node for the shard) fails the inclusion proof', () => {
    const d = honest();
    const parsed = JSON.parse(d.entry);
    parsed.data.nodes.why[0] = 'rank';
    assert.match(refused({ ...d, entry: canonicalJson(parsed) }, 'inclusion'), /not in the ledger/);
  });

  test('an entry placing the shard elsewhere is refused', () => {
    const d = honest();
    const parsed = JSON.parse(d.entry);
    parsed.data.shards = ['node-9'];
    refused({ ...d, entry: canonicalJson(parsed) }, 'entry');
  });

  test('an entry not in the checkpoint sent (a log without it) is refused', () => {
    const d = honest();
    const log = ledgerWith(['{"a":1}', '{"b":2}', '{"x":9}', '{"c":3}']);
    refused({ ...d, checkpoint: log.note, proof: log.proof(2) }, 'inclusion');
  });

  test('a checkpoint not signed by the ledger key is refused', () => {
    const d = honest();
    const other = generateKeyPairSync('ed25519');
    const forged = signNote(`${d.checkpoint.split('\n\n')[0]!}\n`, ORIGIN, other.privateKey, other.publicKey);
    refused({ ...d, checkpoint: forged }, 'checkpoint');
  });
});
