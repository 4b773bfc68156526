import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  explainPlaced,
  formatPublicKey,
  type Job,
  type JobExplanation,
  type JobList,
  type JobView,
  leafHash,
  type PlacedEntryData,
  type Policy,
  rootFromInclusionProof,
  signJob,
  signPolicy,
} from '@muster/proto';
import {
  createToken,
  dialects,
  enrollAgent,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';

// Signed job submission: checked as a command is, placed, and the placement ledgered as
// job.placed in the transaction that stores the job and its shards. Bad input stores nothing.

const GiB = 2 ** 30;
const keys = {
  alice: generateKeyPairSync('ed25519').privateKey,
  bob: generateKeyPairSync('ed25519').privateKey,
};

function job(t: TestServer, fields: Record<string, unknown> = {}): Job {
  const now = t.clock.now();
  return {
    v: 1,
    id: randomUUID(),
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 600_000).toISOString(),
    operator: 'alice',
    action: 'backup',
    args: {},
    select: { all: true },
    count: 1,
    ...fields,
  } as Job;
}

for (const dialect of dialects()) {
  describe(`POST /v1/jobs (${dialect})`, () => {
    let t: TestServer;
    const agents: TestAgent[] = [];
    const submit = (j: Job, who: 'alice' | 'bob' = 'alice') =>
      t.admin('POST', '/v1/jobs', { job: j, signature: signJob(j, keys[who]) });
    // What a user can see of the store: the jobs listed, and the ledger's size.
    const stored = async () => ({
      jobs: ((await t.admin('GET', '/v1/jobs?limit=1000')).json as JobList).items.length,
      ledger: (await t.admin('GET', '/v1/ledger/checkpoint')).body.split('\n')[1],
    });

    before(async () => {
      t = await startTestServer(dialect);
      const op = (name: 'alice' | 'bob') => ({
        name,
        publicKey: formatPublicKey(createPublicKey(keys[name])),
        profiles: ['*'],
      });
      const policy: Policy = {
        version: 1,
        operators: [op('alice'), op('bob')],
        profiles: {
          default: {
            actions: {
              backup: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 1024 },
              deploy: {
                argv: ['true', '{version}'],
                args: { version: { pattern: '[0-9.]+' } },
                timeoutSec: 5,
                maxOutputBytes: 1024,
              },
              wipe: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 1024, approvals: 2 },
            },
          },
        },
      };
      const root = createPrivateKey(readFileSync(join(t.dataDir, 'root.key'), 'utf8'));
      const pushed = await t.admin('POST', '/v1/policy', { policy, signature: signPolicy(policy, root) });
      assert.equal(pushed.status, 201, pushed.body);
      const shapes = [
        { name: 'busy', zone: 'a', load: 6.2, free: 1.2 * GiB },
        { name: 'calm', zone: 'a', load: 0.3, free: 6 * GiB },
        { name: 'other', zone: 'b', load: 0.5, free: 5 * GiB },
      ];
      for (const s of shapes) {
        const token = await createToken(t, { labels: { zone: s.zone } });
        const agent = await enrollAgent(t, { name: s.name, token });
        const res = await agent.heartbeat({
          ...sampleHeartbeat(0, t.clock),
          load: [s.load, 1, 1],
          memory: { totalBytes: 8 * GiB, availableBytes: Math.round(s.free) },
        });
        assert.equal(res.status, 202, res.body);
        agents.push(agent);
      }
    });
    after(async () => {
      for (const a of agents) a.agent.destroy();
      await t.close();
    });

    test('a signed job is placed on the fitting nodes, with one shard each and job.placed in the ledger', async () => {
      const j = job(t, { count: 2, spread: 'zone', require: { minFreeMemoryBytes: 4 * GiB, maxLoad1: 4 } });
      const res = await submit(j);
      assert.equal(res.status, 201, res.body);
      const view = res.json as JobView;
      assert.equal(view.state, 'placed');
      assert.deepEqual(view.shards.map((s) => s.name).sort(), ['calm', 'other']);
      assert.ok(view.shards.every((s) => s.state === 'pending' && s.attempt === 1));
      assert.equal(view.placements.length, 1);
      assert.equal(view.placements[0]!.kind, 'job.placed');

      const shown = (await t.admin('GET', `/v1/jobs/${j.id.slice(0, 8)}`)).json as JobView;
      assert.equal(shown.id, j.id);
      const list = (await t.admin('GET', '/v1/jobs')).json as JobList;
      assert.ok(list.items.some((i) => i.id === j.id && i.shards.pending === 2));
    });

    test('explain serves the ledger entry byte for byte; it proves into the checkpoint and names every node and why', async () => {
      const j = job(t, {
        count: 'all',
        require: { minFreeMemoryBytes: 4 * GiB, maxLoad1: 4, status: ['ok', 'attention'] },
      });
      assert.equal((await submit(j)).status, 201);
      const found = (await t.admin('GET', `/v1/jobs/${j.id}/explain`)).json as JobExplanation;
      assert.equal(found.entries.length, 1);
      const { seq, entry } = found.entries[0]!;
      const size = Number((await t.admin('GET', '/v1/ledger/checkpoint')).body.split('\n')[1]);
      const proof = (await t.admin('GET', `/v1/ledger/proof/inclusion?seq=${seq}&size=${size}`)).json as {
        hashes: string[];
      };
      const root = rootFromInclusionProof(
        seq,
        size,
        leafHash(entry),
        proof.hashes.map((h) => Buffer.from(h, 'base64')),
      );
      const cp = (await t.admin('GET', '/v1/ledger/checkpoint')).body.split('\n')[2];
      assert.equal(root.toString('base64'), cp);
      const data = (JSON.parse(entry) as { data: PlacedEntryData }).data;
      const nodes = explainPlaced(data);
      const busy = nodes.find((n) => n.name === 'busy')!;
      assert.equal(busy.chosen, false);
      assert.deepEqual(busy.reasons, ['free memory 1.2 GiB < required 4 GiB', 'load1 6.2 > 4']);
      assert.match(busy.seen, /load1 6\.2/);
      const calm = nodes.find((n) => n.name === 'calm')!;
      assert.equal(calm.chosen, true);
      assert.ok(calm.score && calm.score.total > 0 && calm.score.fit > 0);
    });

    test('a --spread label no node has still places, and the entry says so', async () => {
      const j = job(t, { count: 1, spread: 'rack' });
      assert.equal((await submit(j)).status, 201);
      const found = (await t.admin('GET', `/v1/jobs/${j.id}/explain`)).json as JobExplanation;
      const data = (JSON.parse(found.entries[0]!.entry) as { data: PlacedEntryData }).data;
      assert.equal(data.shards.length, 1);
      assert.ok(
        data.notes.some((n) => /no eligible node has the label rack/.test(n)),
        data.notes.join('|'),
      );
    });

    test('shards: one node each, on distinct nodes, shard i with its own arguments', async () => {
      const j = job(t, {
        action: 'deploy',
        args: { version: '1.0' },
        shards: [{ version: '1.1' }, { version: '1.2' }],
        require: { status: ['ok', 'attention', 'critical'] },
      });
      const res = await submit(j);
      assert.equal(res.status, 201, res.body);
      const view = res.json as JobView;
      assert.deepEqual(
        view.shards.map((s) => s.shard),
        [0, 1],
      );
      assert.notEqual(view.shards[0]!.nodeId, view.shards[1]!.nodeId);
    });

    const bad: [string, (t: TestServer) => Job, RegExp][] = [
      ['an unknown requirement key', (t) => job(t, { require: { minFreeGpus: 1 } }), /require/],
      ['a negative value', (t) => job(t, { require: { minFreeMemoryBytes: -1 } }), /minFreeMemoryBytes/],
      ['an absurd value', (t) => job(t, { require: { minFreeMemoryBytes: 2 ** 60 } }), /minFreeMemoryBytes/],
      ['count 0', (t) => job(t, { count: 0 }), /count/],
      ['count over the fleet', (t) => job(t, { count: 9 }), /job\.count 9 is more than the 3 active node/],
      ['negative weights', (t) => job(t, { weights: { fit: -1, cost: 1, history: 1 } }), /weights/],
      [
        'weights all zero',
        (t) => job(t, { weights: { fit: 0, cost: 0, history: 0 } }),
        /job\.weights must not all be zero/,
      ],
    ];
    for (const [what, make, field] of bad)
      test(`${what}: 400 naming the field, nothing stored`, async () => {
        const before = await stored();
        const res = await submit(make(t));
        assertProblem(res, 400);
        assert.match((res.json as { detail: string }).detail, field);
        assert.deepEqual(await stored(), before);
      });

    test('a bad signature, or one by another operator, is refused and nothing stored', async () => {
      const before = await stored();
      const j = job(t);
      const forged = await t.admin('POST', '/v1/jobs', { job: j, signature: signJob(j, keys.bob) });
      assertProblem(forged, 400, 'bad_signature');
      const altered = await t.admin('POST', '/v1/jobs', {
        job: { ...j, count: 2 },
        signature: signJob(j, keys.alice),
      });
      assertProblem(altered, 400, 'bad_signature');
      assert.deepEqual(await stored(), before);
    });

    test('a replayed job is refused', async () => {
      const j = job(t);
      assert.equal((await submit(j)).status, 201);
      assertProblem(await submit(j), 409, 'replay');
    });

    test('no eligible node: 422 with the reasons, nothing stored', async () => {
      const before = await stored();
      const res = await submit(job(t, { require: { minFreeMemoryBytes: 100 * GiB } }));
      assertProblem(res, 422, 'no_eligible_node');
      assert.match((res.json as { detail: string }).detail, /free memory below the requirement/);
      assert.deepEqual(await stored(), before);
    });

    test('dual control: an action asking for 2 approvals waits unplaced until two operators have signed', async () => {
      const one = job(t, { action: 'wipe' });
      const waiting = await submit(one);
      assert.equal(waiting.status, 201, waiting.body);
      assert.equal((waiting.json as JobView).state, 'awaiting_approval');
      assert.equal((waiting.json as JobView).shards.length, 0);
      const two = job(t, { action: 'wipe' });
      const both = await t.admin('POST', '/v1/jobs', {
        job: two,
        signatures: [
          { operator: 'alice', signature: signJob(two, keys.alice) },
          { operator: 'bob', signature: signJob(two, keys.bob) },
        ],
      });
      assert.equal(both.status, 201, both.body);
      assert.equal((both.json as JobView).state, 'placed');
      assert.equal((both.json as JobView).shards.length, 1);
    });

    test('stop: pending shards are stopped and the job says so', async () => {
      const j = job(t, { count: 2, require: { status: ['ok', 'attention', 'critical'] } });
      assert.equal((await submit(j)).status, 201);
      const res = await t.admin('DELETE', `/v1/jobs/${j.id}`);
      assert.equal(res.status, 200, res.body);
      const view = res.json as JobView;
      assert.equal(view.state, 'stopped');
      assert.ok(view.shards.every((s) => s.state === 'stopped'));
    });
  });
}
