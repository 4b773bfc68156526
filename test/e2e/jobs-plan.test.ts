import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Placement, TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine, waitForNode } from '../support/fleet.js';
import { describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// `muster jobs plan` through the real binary, against a real server and real agents whose labels
// come from their join tokens. Every agent here runs on this one machine, so they report the same
// load and memory: telemetry filters are checked by thresholds every node passes or none does,
// and any status is allowed where the test is about something else (a busy test host makes
// nodes `attention`, which is a correct answer, not the point).
const ANY_STATUS = ['--require', 'status=ok,attention,critical'];

describe('muster jobs plan', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  // Flags, then the action after `--`, as a user types it.
  const plan = (flags: string[]) =>
    sandbox.run(['jobs', 'plan', ...flags, ...server.adminFlags, '--', 'uptime']);
  const planJson = async (args: string[]) => {
    const result = await plan([...args, '--json']);
    assert.equal(result.code, 0, describeResult(result));
    return JSON.parse(result.stdout) as Placement;
  };
  after(() => sandbox.cleanup());

  before(async () => {
    server = await sandbox.startServer();
    const nodes = [
      { name: 'web-a1', labels: ['zone=a', 'env=prod', 'muster.io/cost=1'] },
      { name: 'web-a2', labels: ['zone=a', 'env=prod', 'muster.io/cost=3'] },
      { name: 'web-b1', labels: ['zone=b', 'env=prod', 'muster.io/cost=2'] },
      { name: 'dev-1', labels: ['env=dev'] },
    ];
    for (const node of nodes) {
      const token = await sandbox.json<TokenCreated>([
        'token',
        'create',
        '--name',
        node.name,
        ...node.labels.flatMap((l) => ['--label', l]),
        ...server.adminFlags,
      ]);
      sandbox.spawn([
        ...agentArgsFromJoinLine(token.agentCommand, server.agentUrl),
        '--data-dir',
        sandbox.tempDir(`agent-${node.name}`),
      ]);
    }
    for (const node of nodes)
      await waitForNode(sandbox, server, node.name, 'sends a heartbeat', (n) => n.latest !== null);
  });

  test('--spread zone picks one node per zone, the cheaper in zone a; the rest say why not', async () => {
    const p = await planJson(['--count', '2', '--spread', 'zone', '--select', 'env=prod', ...ANY_STATUS]);
    assert.deepEqual(p.chosen.map((n) => n.name).sort(), ['web-a1', 'web-b1']);
    assert.deepEqual(p.chosen.map((n) => n.spreadValue).sort(), ['a', 'b']);
    const byName = new Map(p.rejected.map((n) => [n.name, n]));
    assert.match(
      byName.get('dev-1')!.reasons[0]!,
      /^not selected: label env=prod does not match \(env=dev\)$/,
    );
    assert.match(byName.get('web-a2')!.reasons[0]!, /^not chosen: 2 node\(s\) chosen across zone first$/);
    assert.ok(p.notes.some((n) => /history: .*no receipts = 0\.5/.test(n)));
    // The table shows every node, chosen or the reason, with its score parts.
    const text = await plan(['--count', '2', '--spread', 'zone', '--select', 'env=prod', ...ANY_STATUS]);
    assert.equal(text.code, 0, describeResult(text));
    assert.match(text.stdout, /^NODE\s+CHOSEN\s+SCORE\s+FIT\s+COST\s+HISTORY\s+REASON$/m);
    assert.match(text.stdout, /^web-a1\s+chosen\s+[\d.]+\s+[\d.]+\s+1\.00\s+0\.50$/m);
    assert.match(text.stdout, /^dev-1\s+-\s+-\s+-\s+-\s+-\s+not selected: label env=prod/m);
  });

  test('a spread label no node has still places, and the explanation says so', async () => {
    const p = await planJson(['--count', '2', '--spread', 'rack', ...ANY_STATUS]);
    assert.equal(p.chosen.length, 2);
    assert.ok(
      p.notes.some((n) => n.includes('no eligible node has the label rack')),
      p.notes.join('\n'),
    );
  });

  test('--require maxLoad1 and labels: every node passes a generous bound; a label requirement names its value', async () => {
    const p = await planJson([
      '--count',
      'all',
      '--require',
      'maxLoad1=100000',
      '--require',
      'labels=zone=a',
      ...ANY_STATUS,
    ]);
    assert.deepEqual(p.chosen.map((n) => n.name).sort(), ['web-a1', 'web-a2']);
    const reasons = Object.fromEntries(p.rejected.map((n) => [n.name, n.reasons.join('; ')]));
    assert.equal(reasons['web-b1'], 'label zone=a does not match (zone=b)');
    assert.equal(reasons['dev-1'], 'label zone=a does not match (no zone label)');
    for (const n of p.chosen) assert.equal(typeof n.seen.load1, 'number');
  });

  test('--require maxLoad1=0: each node is judged on the load it reported, and the reason quotes it', async () => {
    const result = await plan(['--count', 'all', '--require', 'maxLoad1=0', ...ANY_STATUS, '--json']);
    const p = JSON.parse(result.stdout) as Placement;
    assert.equal(result.code, p.chosen.length > 0 ? 0 : 1, describeResult(result));
    assert.equal(p.chosen.length + p.rejected.length, 4);
    // Whatever this host's load is, a node is dropped exactly when the load it was judged on is above 0.
    for (const n of [...p.chosen, ...p.rejected]) {
      const load = n.seen.load1!;
      if (load > 0) assert.deepEqual(n.reasons, [`load1 ${Math.round(load * 100) / 100} > 0`], n.name);
      else assert.ok(n.chosen, `${n.name} reported load ${load} and was not chosen: ${n.reasons}`);
    }
  });

  test('no eligible node: exit 1, each node with its reason (free memory < required)', async () => {
    const result = await plan(['--count', '1', '--require', 'minFreeMemoryBytes=1000TiB', ...ANY_STATUS]);
    assert.equal(result.code, 1, describeResult(result));
    assert.match(result.stderr, /no node is eligible/);
    for (const name of ['web-a1', 'web-a2', 'web-b1', 'dev-1'])
      assert.match(
        result.stdout,
        new RegExp(`^${name}\\s.*free memory [\\d.]+ [KMGT]iB < required 1000 TiB$`, 'm'),
      );
  });

  test('--snapshot plans offline from nodes ls --json, with no server', async () => {
    const ls = await sandbox.run(['nodes', 'ls', '--json', ...server.adminFlags]);
    assert.equal(ls.code, 0, describeResult(ls));
    const file = join(sandbox.tempDir('snapshot'), 'nodes.json');
    writeFileSync(file, ls.stdout);
    const result = await sandbox.run([
      'jobs',
      'plan',
      '--snapshot',
      file,
      '--count',
      '2',
      '--spread',
      'zone',
      '--select',
      'env=prod',
      ...ANY_STATUS,
      '--json',
      '--url',
      'http://127.0.0.1:1',
      '--',
      'uptime',
    ]);
    assert.equal(result.code, 0, describeResult(result));
    const p = JSON.parse(result.stdout) as Placement;
    assert.deepEqual(p.chosen.map((n) => n.name).sort(), ['web-a1', 'web-b1']);
    assert.ok(p.notes.some((n) => n.startsWith('offline:')));
    const tooMany = await sandbox.run(['jobs', 'plan', '--snapshot', file, '--count', '9', '--', 'uptime']);
    assert.equal(tooMany.code, 2, describeResult(tooMany));
    assert.match(
      tooMany.stderr,
      /^muster jobs plan: --count: count 9 is more than the 4 active node\(s\) in the fleet/,
    );
  });

  const badFlags: [string, string[], RegExp][] = [
    [
      'an unknown requirement key',
      ['--require', 'minFreeGpus=1'],
      /^muster jobs plan: --require: unknown requirement "minFreeGpus"/,
    ],
    ['a negative load', ['--require', 'maxLoad1=-1'], /^muster jobs plan: --require: require\.maxLoad1 /],
    [
      'an absurd memory size',
      ['--require', 'minFreeMemoryBytes=5000TiB'],
      /^muster jobs plan: --require: require\.minFreeMemoryBytes /,
    ],
    [
      'a size without a number',
      ['--require', 'minFreeDiskBytes=/var:lots'],
      /^muster jobs plan: --require minFreeDiskBytes: "\/var:lots" is not MOUNT:SIZE/,
    ],
    ['count 0', ['--count', '0'], /^muster jobs plan: --count: 0 picks no node/],
    [
      'count over the fleet',
      ['--count', '5'],
      /^muster jobs plan: --count: count 5 is more than the 4 active node\(s\) in the fleet/,
    ],
    ['negative weights', ['--weights', 'fit=-1,cost=1'], /^muster jobs plan: --weights: weights\.fit /],
    [
      'weights all zero',
      ['--weights', 'fit=0,cost=0,history=0'],
      /^muster jobs plan: --weights: weights must not all be zero/,
    ],
    [
      'a cron that never fires',
      ['--cron', '0 0 31 2 *', '--until', '30d'],
      /^muster jobs plan: --cron: schedule\.cron "0 0 31 2 \*" never fires before until/,
    ],
    [
      'a cron every second',
      ['--cron', '* * * * * *', '--until', '1d'],
      /^muster jobs plan: --cron: schedule\.cron "\* \* \* \* \* \*" has 6 fields/,
    ],
    [
      'until in the past',
      ['--every', '1h', '--until', '2020-01-01T00:00:00Z'],
      /^muster jobs plan: --until: schedule\.until 2020-01-01T00:00:00\.000Z is in the past/,
    ],
    ['every second', ['--every', '1s', '--until', '1d'], /^muster jobs plan: --every: schedule\.everySec /],
  ];
  for (const [what, flags, message] of badFlags)
    test(`refused with exit 2, the flag named: ${what}`, async () => {
      const result = await plan([...flags]);
      assert.equal(result.code, 2, describeResult(result));
      assert.match(result.stderr, message);
    });

  test('shards: 100,000 entries or a non-object entry are refused, the flag named', async () => {
    const dir = sandbox.tempDir('shards');
    const big = join(dir, 'big.json');
    writeFileSync(big, JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({ part: String(i) }))));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ part: '1' }, 'two']));
    for (const file of [big, bad]) {
      const result = await plan(['--shards', file]);
      assert.equal(result.code, 2, describeResult(result));
      assert.match(result.stderr, /^muster jobs plan: --shards: shards/);
    }
  });
});
