import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Placement } from '@muster/proto';
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

const GiB = 2 ** 30;

function job(fields: Record<string, unknown> = {}) {
  const now = Date.now();
  return {
    v: 1,
    id: 'job_plan_0001',
    nonce: 'A'.repeat(22),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3_600_000).toISOString(),
    operator: 'alice',
    action: 'backup',
    args: {},
    select: { all: true },
    count: 1,
    require: { status: ['ok', 'attention', 'critical'] },
    ...fields,
  };
}

for (const dialect of dialects()) {
  describe(`POST /v1/jobs/plan (${dialect})`, () => {
    let t: TestServer;
    const agents: TestAgent[] = [];
    before(async () => {
      t = await startTestServer(dialect);
      // Three nodes that differ in what placement weighs: load, free memory, zone.
      const shapes = [
        { name: 'busy', zone: 'a', load: 6.2, free: 1.2 * GiB },
        { name: 'calm', zone: 'a', load: 0.3, free: 6 * GiB },
        { name: 'other', zone: 'b', load: 0.5, free: 5 * GiB },
      ];
      for (const s of shapes) {
        const token = await createToken(t, { labels: { zone: s.zone } });
        const agent = await enrollAgent(t, { name: s.name, token });
        const hb = {
          ...sampleHeartbeat(0),
          load: [s.load, 1, 1],
          memory: { totalBytes: 8 * GiB, availableBytes: Math.round(s.free) },
        };
        const res = await agent.heartbeat(hb);
        assert.equal(res.status, 202, res.body);
        agents.push(agent);
      }
    });
    after(async () => {
      for (const a of agents) a.agent.destroy();
      await t.close();
    });

    const plan = async (fields: Record<string, unknown>) => {
      const res = await t.admin('POST', '/v1/jobs/plan', { job: job(fields) });
      assert.equal(res.status, 200, res.body);
      return res.json as Placement;
    };

    test('filters name the value and the bound; chosen nodes carry score parts and what they were judged on', async () => {
      const p = await plan({
        count: 'all',
        require: { minFreeMemoryBytes: 4 * GiB, maxLoad1: 4, status: ['ok', 'attention', 'critical'] },
      });
      assert.deepEqual(p.chosen.map((n) => n.name).sort(), ['calm', 'other']);
      const busy = p.rejected.find((n) => n.name === 'busy')!;
      assert.deepEqual(busy.reasons, ['free memory 1.2 GiB < required 4 GiB', 'load1 6.2 > 4']);
      assert.equal(busy.seen.load1, 6.2);
      for (const n of p.chosen) {
        assert.ok(n.score && n.score.total > 0 && n.score.total <= 1);
        assert.equal(n.score.history, 0.5);
      }
      assert.deepEqual(p.weights, { fit: 0.5, cost: 0.2, history: 0.3 });
    });

    test("history comes from this action's receipts on the node: failures lower it, another action does not count", async () => {
      const db = t.server.store.db;
      const calm = agents[1]!.nodeId;
      const now = Date.now();
      for (const [i, action, state] of [
        [1, 'backup', 'failed'],
        [2, 'backup', 'failed'],
        [3, 'uptime', 'succeeded'],
      ] as const) {
        await db
          .insertInto('commands')
          .values({
            id: `cmd_hist_000${i}`,
            nonce: `n${i}`.repeat(9),
            operator: 'alice',
            action,
            signed: '{}',
            issued_at: now,
            expires_at: now,
            created_at: now,
          })
          .execute();
        await db
          .insertInto('command_targets')
          .values({
            command_id: `cmd_hist_000${i}`,
            node_id: calm,
            state,
            reason: null,
            receipt: null,
            expires_at: now,
            updated_at: now - 1000,
          })
          .execute();
      }
      const p = await plan({ count: 'all' });
      const row = [...p.chosen, ...p.rejected].find((n) => n.name === 'calm')!;
      assert.equal(row.seen.receipts, 2);
      assert.ok(row.score!.history < 0.2, `history ${row.score!.history}`);
    });

    test('spread: one per zone first, the unlabeled zone value last; a label no node has still places', async () => {
      const p = await plan({ count: 2, spread: 'zone' });
      assert.deepEqual(p.chosen.map((n) => n.spreadValue).sort(), ['a', 'b']);
      const none = await plan({ count: 2, spread: 'rack' });
      assert.equal(none.chosen.length, 2);
      assert.ok(none.notes.some((n) => n.includes('no eligible node has the label rack')));
    });

    const bad: [string, Record<string, unknown>, RegExp][] = [
      [
        'an unknown requirement key',
        { require: { minFreeGpus: 1 } },
        /^body\.job\.require has a property it does not take: "minFreeGpus"$/,
      ],
      ['a negative value', { require: { maxLoad1: -1 } }, /^body\.job\.require\.maxLoad1 /],
      [
        'an absurd value',
        { require: { minFreeMemoryBytes: 2 ** 55 } },
        /^body\.job\.require\.minFreeMemoryBytes /,
      ],
      ['count 0', { count: 0 }, /^body\.job\.count /],
      [
        'count over the fleet',
        { count: 4 },
        /^body\.job\.count 4 is more than the 3 active node\(s\) in the fleet$/,
      ],
      ['negative weights', { weights: { fit: -1, cost: 1, history: 1 } }, /^body\.job\.weights\.fit /],
      [
        'weights all zero',
        { weights: { fit: 0, cost: 0, history: 0 } },
        /^body\.job\.weights must not all be zero/,
      ],
      ['100,000 shards', { shards: Array.from({ length: 100_000 }, () => ({})) }, /^body\.job\.shards /],
      ['a shard that is not an object', { shards: [{}, 'two'] }, /^body\.job\.shards\.1 /],
      [
        'a cron that never fires',
        { schedule: { cron: '0 0 30 2 *', until: new Date(Date.now() + 30 * 86_400_000).toISOString() } },
        /^body\.job\.schedule\.cron "0 0 30 2 \*" never fires before until$/,
      ],
      [
        'a cron every second',
        { schedule: { cron: '* * * * * *', until: new Date(Date.now() + 86_400_000).toISOString() } },
        /^body\.job\.schedule\.cron .* has 6 fields/,
      ],
      [
        'until in the past',
        { schedule: { everySec: 3600, until: '2020-01-01T00:00:00.000Z' } },
        /^body\.job\.schedule\.until 2020-01-01T00:00:00\.000Z is in the past$/,
      ],
      ['a spread that is no label key', { spread: 'Not A Label' }, /^body\.job\.spread /],
    ];
    for (const [what, fields, detail] of bad)
      test(`400 naming the field, nothing stored: ${what}`, async () => {
        const size = async () => (await t.admin('GET', '/v1/ledger/entries?limit=1000')).body;
        const before = await size();
        const res = await t.admin('POST', '/v1/jobs/plan', { job: job(fields) });
        assert.match(assertProblem(res, 400).detail, detail);
        assert.equal(await size(), before);
      });
  });
}
