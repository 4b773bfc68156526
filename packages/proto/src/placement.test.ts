import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type Job, jobProblems } from './jobs.js';
import {
  filterReasons,
  historyScore,
  type PlacementCandidate,
  type PlacementInput,
  place,
} from './placement.js';

const GiB = 2 ** 30;
const NOW = Date.parse('2026-12-01T12:00:00Z');

function node(
  id: string,
  fields: Partial<PlacementCandidate> = {},
  hb: Partial<NonNullable<PlacementCandidate['latest']>> = {},
): PlacementCandidate {
  return {
    id,
    name: id,
    profile: 'web',
    labels: {},
    status: 'ok',
    facts: { cpus: 4, memoryBytes: 8 * GiB },
    latest: {
      sentAt: new Date(NOW).toISOString(),
      load: [0.5, 0.5, 0.5],
      cpuPct: 10,
      memory: { totalBytes: 8 * GiB, availableBytes: 6 * GiB },
      disks: [{ mount: '/', totalBytes: 100 * GiB, freeBytes: 50 * GiB }],
      ...hb,
    },
    history: [],
    ...fields,
  };
}

const baseJob = (fields: Partial<Job> = {}): PlacementInput['job'] => ({
  id: 'job-0001',
  action: 'backup',
  select: { all: true },
  count: 1,
  ...fields,
});

describe('filter reasons, in the words an operator acts on', () => {
  const reasons = (job: Partial<Job>, n: PlacementCandidate) => filterReasons(baseJob(job), n);
  test('free memory', () =>
    assert.deepEqual(
      reasons(
        { require: { minFreeMemoryBytes: 4 * GiB } },
        node('a', {}, { memory: { totalBytes: 8 * GiB, availableBytes: 1.2 * GiB } }),
      ),
      ['free memory 1.2 GiB < required 4 GiB'],
    ));
  test('status, default ok', () =>
    assert.deepEqual(reasons({}, node('a', { status: 'attention' })), ['status attention (required ok)']));
  test('status, a list', () =>
    assert.deepEqual(
      reasons({ require: { status: ['ok', 'attention'] } }, node('a', { status: 'offline' })),
      ['status offline (required ok or attention)'],
    ));
  test('labels', () => {
    assert.deepEqual(
      reasons({ require: { labels: { env: 'prod' } } }, node('a', { labels: { env: 'dev' } })),
      ['label env=prod does not match (env=dev)'],
    );
    assert.deepEqual(reasons({ require: { labels: { env: 'prod' } } }, node('a')), [
      'label env=prod does not match (no env label)',
    ]);
  });
  test('load and cpu', () => {
    assert.deepEqual(reasons({ require: { maxLoad1: 4 } }, node('a', {}, { load: [6.2, 1, 1] })), [
      'load1 6.2 > 4',
    ]);
    assert.deepEqual(reasons({ require: { maxCpuPct: 80 } }, node('a', {}, { cpuPct: 93.5 })), [
      'cpu 93.5% > 80%',
    ]);
  });
  test('disk', () => {
    assert.deepEqual(reasons({ require: { minFreeDiskBytes: { mount: '/var', bytes: GiB } } }, node('a')), [
      'no disk mounted at /var',
    ]);
    assert.deepEqual(reasons({ require: { minFreeDiskBytes: { mount: '/', bytes: 60 * GiB } } }, node('a')), [
      'free disk on / 50 GiB < required 60 GiB',
    ]);
  });
  test('select', () => {
    assert.deepEqual(reasons({ select: { labels: { env: 'prod' } } }, node('a')), [
      'not selected: label env=prod does not match (no env label)',
    ]);
    assert.deepEqual(reasons({ select: { profile: 'db' } }, node('a')), [
      'not selected: profile web (select wants db)',
    ]);
    assert.deepEqual(reasons({ select: { nodes: ['b'] } }, node('a')), [
      'not selected: not among the nodes named in select',
    ]);
  });
  test('no heartbeat', () =>
    assert.deepEqual(reasons({}, node('a', { latest: null })), [
      'no heartbeat yet: nothing to judge its free memory, disk or load on',
    ]));
  test('every failed filter is listed, not just the first', () =>
    assert.equal(
      reasons(
        { require: { maxLoad1: 1, maxCpuPct: 5 } },
        node('a', { status: 'attention' }, { load: [2, 1, 1] }),
      ).length,
      3,
    ));
});

describe('scores', () => {
  test('history: no receipts is the prior 0.5; recent failures weigh more than old successes', () => {
    assert.equal(historyScore([], NOW), 0.5);
    const day = (d: number) => new Date(NOW - d * 86_400_000).toISOString();
    const recentFail = historyScore(
      [
        { finishedAt: day(0), status: 'failed' },
        { finishedAt: day(30), status: 'succeeded' },
      ],
      NOW,
    );
    const recentOk = historyScore(
      [
        { finishedAt: day(0), status: 'succeeded' },
        { finishedAt: day(30), status: 'failed' },
      ],
      NOW,
    );
    assert.ok(recentFail < 0.5 && recentOk > 0.5, `${recentFail} ${recentOk}`);
  });
  test('cost: cheapest = 1, dearest = 0, no label = 0.5', () => {
    const p = place({
      job: baseJob({ count: 'all', weights: { fit: 0, cost: 1, history: 0 } }),
      candidates: [
        node('a', { labels: { 'muster.io/cost': '1' } }),
        node('b', { labels: { 'muster.io/cost': '3' } }),
        node('c'),
      ],
      now: NOW,
    });
    assert.deepEqual(Object.fromEntries(p.chosen.map((n) => [n.name, n.score!.cost])), {
      a: 1,
      c: 0.5,
      b: 0,
    });
    assert.deepEqual(
      p.chosen.map((n) => n.name),
      ['a', 'c', 'b'],
    );
  });
  test('count over the eligible nodes places them all and says so', () => {
    const p = place({
      job: baseJob({ count: 3 }),
      candidates: [node('a'), node('b', { status: 'offline' })],
      now: NOW,
    });
    assert.equal(p.chosen.length, 1);
    assert.ok(p.notes.includes('only 1 of the 3 node(s) wanted are eligible'));
  });
});

describe('job problems', () => {
  const job = (fields: Partial<Job>) =>
    ({
      ...baseJob(),
      v: 1,
      nonce: 'x'.repeat(16),
      issuedAt: new Date(NOW).toISOString(),
      expiresAt: new Date(NOW + 3_600_000).toISOString(),
      operator: 'alice',
      args: {},
      ...fields,
    }) as Job;
  const until = new Date(NOW + 30 * 86_400_000).toISOString();
  test('a cron on the 29th of February fires within a leap year, the 30th never', () => {
    assert.deepEqual(
      jobProblems(
        job({
          issuedAt: '2027-06-01T00:00:00Z',
          expiresAt: '2027-06-02T00:00:00Z',
          schedule: { cron: '0 3 29 2 *', until: '2028-03-01T00:00:00Z' },
        }),
        Date.parse('2027-06-01T00:00:00Z'),
      ),
      [],
    );
    assert.equal(
      jobProblems(job({ schedule: { cron: '0 3 30 2 *', until } }), NOW)[0]?.field,
      'job.schedule.cron',
    );
  });
  test('exactly one of everySec and cron', () => {
    assert.equal(jobProblems(job({ schedule: { until } }), NOW)[0]?.field, 'job.schedule.everySec');
    assert.equal(
      jobProblems(job({ schedule: { everySec: 3600, cron: '0 * * * *', until } }), NOW)[0]?.field,
      'job.schedule.everySec',
    );
  });
  test('a cron field out of range', () =>
    assert.match(
      jobProblems(job({ schedule: { cron: '61 * * * *', until } }), NOW)[0]!.message,
      /minute "61" is outside 0-59/,
    ));
});

// Random fleets: statuses, loads, memory, zones and costs drawn independently.
const arbNode = (i: number) =>
  fc
    .record({
      status: fc.constantFrom('ok', 'ok', 'ok', 'attention', 'offline'),
      load: fc.double({ min: 0, max: 8, noNaN: true }),
      free: fc.integer({ min: 0, max: 8 }),
      zone: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }),
      cost: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
      receipts: fc.array(fc.record({ age: fc.integer({ min: 0, max: 60 }), ok: fc.boolean() }), {
        maxLength: 4,
      }),
    })
    .map((r) =>
      node(
        `n-${i}`,
        {
          status: r.status as PlacementCandidate['status'],
          labels: {
            ...(r.zone ? { zone: r.zone } : {}),
            ...(r.cost !== undefined ? { 'muster.io/cost': String(r.cost) } : {}),
          },
          history: r.receipts.map((h) => ({
            finishedAt: new Date(NOW - h.age * 86_400_000).toISOString(),
            status: h.ok ? 'succeeded' : 'failed',
          })),
        },
        { load: [r.load, 1, 1], memory: { totalBytes: 8 * GiB, availableBytes: r.free * GiB } },
      ),
    );
const arbFleet = fc
  .integer({ min: 0, max: 14 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbNode(i))));
const arbJob = fc
  .record({
    count: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.constant('all' as const)),
    maxLoad1: fc.option(fc.double({ min: 0, max: 8, noNaN: true }), { nil: undefined }),
    spread: fc.option(fc.constant('zone'), { nil: undefined }),
  })
  .map((j) =>
    baseJob({
      count: j.count,
      ...(j.spread ? { spread: j.spread } : {}),
      ...(j.maxLoad1 !== undefined ? { require: { maxLoad1: j.maxLoad1 } } : {}),
    }),
  );

/** Fisher–Yates with a small LCG: a random pick fast-check can replay from its seed. */
function shuffled<T>(list: readonly T[], seed: number): T[] {
  const out = [...list];
  let state = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('placement properties', () => {
  test('never picks a filtered node, never more than count, every node accounted for once', () =>
    fc.assert(
      fc.property(arbJob, arbFleet, (job, fleet) => {
        const p = place({ job, candidates: fleet, now: NOW });
        for (const c of p.chosen)
          assert.deepEqual(filterReasons(job, fleet.find((n) => n.id === c.nodeId)!), []);
        if (job.count !== 'all') assert.ok(p.chosen.length <= job.count);
        assert.equal(p.chosen.length + p.rejected.length, fleet.length);
        for (const r of p.rejected) assert.ok(r.reasons.length > 0);
      }),
    ));

  test('the same inputs in any order give the same output', () =>
    fc.assert(
      fc.property(
        arbJob,
        arbFleet.chain((f) =>
          fc.tuple(fc.constant(f), fc.shuffledSubarray(f, { minLength: f.length, maxLength: f.length })),
        ),
        (job, [fleet, shuffled]) => {
          assert.deepEqual(
            place({ job, candidates: shuffled, now: NOW }),
            place({ job, candidates: fleet, now: NOW }),
          );
        },
      ),
    ));

  test('spread is never more uneven than a random pick of the same size (max - min per zone)', () =>
    fc.assert(
      fc.property(arbFleet, fc.integer({ min: 1, max: 10 }), fc.integer(), (fleet, count, seed) => {
        const zoned = fleet.filter((n) => n.labels.zone);
        const p = place({ job: baseJob({ count, spread: 'zone' }), candidates: zoned, now: NOW });
        const eligible = zoned.filter((n) => filterReasons(baseJob(), n).length === 0);
        const zones = [...new Set(eligible.map((n) => n.labels.zone!))];
        const spreadOf = (ids: string[]) => {
          const counts = zones.map(
            (z) => eligible.filter((n) => n.labels.zone === z && ids.includes(n.id)).length,
          );
          return counts.length === 0 ? 0 : Math.max(...counts) - Math.min(...counts);
        };
        const random = shuffled(eligible, seed).slice(0, p.chosen.length);
        assert.ok(spreadOf(p.chosen.map((c) => c.nodeId)) <= spreadOf(random.map((n) => n.id)));
      }),
    ));

  test('adding a strictly better node never makes the chosen total worse, and it is chosen', () =>
    fc.assert(
      fc.property(arbFleet, fc.integer({ min: 1, max: 5 }), (fleet, count) => {
        // No costs: a cost score is relative to the cheapest node, so a new node would move everyone's.
        const plain = fleet.map((n) => ({ ...n, labels: {} }));
        const job = baseJob({ count });
        const sum = (p: ReturnType<typeof place>) => p.chosen.reduce((s, c) => s + c.score!.total, 0);
        const before = place({ job, candidates: plain, now: NOW });
        // Better on every part than any node the fleet can hold: full headroom, and more fresh
        // successes than a generated node has receipts.
        const ok = { finishedAt: new Date(NOW).toISOString(), status: 'succeeded' as const };
        const best = node(
          'n-best',
          { history: Array.from({ length: 5 }, () => ok) },
          { load: [0, 0, 0], cpuPct: 0, memory: { totalBytes: 8 * GiB, availableBytes: 8 * GiB } },
        );
        const afterwards = place({ job, candidates: [...plain, best], now: NOW });
        assert.ok(sum(afterwards) >= sum(before) - 1e-9);
        assert.ok(afterwards.chosen.some((c) => c.nodeId === 'n-best'));
      }),
    ));

  test('ties are broken by the job and node ids, not by input order', () => {
    const fleet = [node('x'), node('y'), node('z')];
    const first = place({ job: baseJob({ id: 'job-aaaa' }), candidates: fleet, now: NOW }).chosen[0]!.nodeId;
    const reversed = place({ job: baseJob({ id: 'job-aaaa' }), candidates: [...fleet].reverse(), now: NOW })
      .chosen[0]!.nodeId;
    assert.equal(first, reversed);
    const picks = new Set(
      Array.from(
        { length: 20 },
        (_, i) =>
          place({ job: baseJob({ id: `job-${i}aaaa` }), candidates: fleet, now: NOW }).chosen[0]!.nodeId,
      ),
    );
    assert.ok(picks.size > 1, 'different jobs draw different nodes among equals');
  });
});
