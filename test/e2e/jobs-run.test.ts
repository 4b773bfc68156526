import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { JobList, JobView, TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine, waitForNode } from '../support/fleet.js';
import { describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// `muster jobs run|ls|show|explain|stop` through the real binary, signed with a key made by
// `muster operator keygen`, against a real server with real agents. Every agent runs on this
// machine, so any status is allowed where the test is about something else.
const ANY_STATUS = ['--require', 'status=ok,attention,critical'];

describe('muster jobs run, ls, show, explain, stop', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let signer: string[];
  // The admin flags go before `--`: what follows is the action and its arguments.
  const jobs = (args: string[]) => {
    const dashes = args.indexOf('--');
    const [flags, action] = dashes < 0 ? [args, []] : [args.slice(0, dashes), args.slice(dashes)];
    return sandbox.run(['jobs', ...flags, ...server.adminFlags, ...action]);
  };
  const listed = async () =>
    (await sandbox.json<JobList>(['jobs', 'ls', '--json', ...server.adminFlags])).items.length;
  after(() => sandbox.cleanup());

  before(async () => {
    server = await sandbox.startServer();
    const key = join(sandbox.tempDir('operator'), 'operator.key');
    assert.equal((await sandbox.run(['operator', 'keygen', '--out', key])).code, 0);
    const add = await sandbox.run([
      'operator',
      'add',
      'alice',
      '--pubkey',
      `${key}.pub`,
      '--profiles',
      '*',
      ...server.adminFlags,
    ]);
    assert.equal(add.code, 0, describeResult(add));
    const edit = await sandbox.run(['policy', 'edit', '--yes', ...server.adminFlags], { EDITOR: 'true' });
    assert.equal(edit.code, 0, describeResult(edit));
    signer = ['--key', key, '--operator', 'alice'];
    for (const [name, zone] of [
      ['job-a', 'a'],
      ['job-b', 'b'],
    ] as const) {
      const token = await sandbox.json<TokenCreated>([
        'token',
        'create',
        '--name',
        name,
        '--label',
        `zone=${zone}`,
        ...server.adminFlags,
      ]);
      sandbox.spawn([
        ...agentArgsFromJoinLine(token.agentCommand, server.agentUrl),
        '--data-dir',
        sandbox.tempDir(`agent-${name}`),
      ]);
    }
    for (const name of ['job-a', 'job-b'])
      await waitForNode(sandbox, server, name, 'sends a heartbeat', (n) => n.latest !== null);
  });

  test('run signs and places; ls and show list it; explain prints the ledgered judgement of every node', async () => {
    const run = await jobs([
      'run',
      '--count',
      '1',
      '--spread',
      'zone',
      '--select',
      'zone=a',
      ...ANY_STATUS,
      ...signer,
      '--json',
      '--',
      'uptime',
    ]);
    assert.equal(run.code, 0, describeResult(run));
    const view = JSON.parse(run.stdout) as JobView;
    assert.equal(view.state, 'placed');
    assert.deepEqual(
      view.shards.map((s) => s.name),
      ['job-a'],
    );

    const ls = await jobs(['ls']);
    assert.match(ls.stdout, new RegExp(`^${view.id}\\s+\\S+\\s+alice\\s+uptime\\s+placed`, 'm'));
    const show = await jobs(['show', view.id.slice(0, 8)]);
    assert.equal(show.code, 0, describeResult(show));
    assert.match(show.stdout, /job\.placed at ledger seq \d+/);
    assert.match(show.stdout, /^0\s+job-a\s+\S+\s+1/m);

    const explain = await jobs(['explain', view.id]);
    assert.equal(explain.code, 0, describeResult(explain));
    assert.match(explain.stdout, /^job\.placed \(ledger seq \d+, .+\): 1 of 1 node\(s\) for uptime$/m);
    assert.match(
      explain.stdout,
      /^job-a\s+shard 0\s+[\d.]+\s+[\d.]+\s+0\.500\s+0\.500\s+status \w+, heartbeat/m,
    );
    assert.match(
      explain.stdout,
      /^job-b\s+-\s+-\s+-\s+-\s+-\s+not selected: outside select \{"labels":\{"zone":"a"\}\}/m,
    );
    const one = await jobs(['explain', view.id, '--node', 'job-b']);
    assert.doesNotMatch(one.stdout, /^job-a/m);

    const stop = await jobs(['stop', view.id]);
    assert.equal(stop.code, 0, describeResult(stop));
    assert.match(stop.stdout, /stopped/);
    assert.equal(
      (await sandbox.json<JobView>(['jobs', 'show', view.id, '--json', ...server.adminFlags])).state,
      'stopped',
    );
  });

  test('bad input: exit 2 naming the flag, nothing stored', async () => {
    const before = await listed();
    const cases: [string[], RegExp][] = [
      [['--require', 'minFreeGpus=1'], /--require: unknown requirement "minFreeGpus"/],
      [['--require', 'maxLoad1=-3'], /--require/],
      [['--require', 'minFreeMemoryBytes=9000PiB'], /--require/],
      [['--count', '0'], /--count: 0 picks no node/],
      [['--count', '5', ...ANY_STATUS], /--count: count 5 is more than the 2 active node/],
      [['--weights', 'fit=-1'], /--weights/],
      [['--weights', 'fit=0,cost=0,history=0'], /--weights: weights must not all be zero/],
    ];
    for (const [flags, message] of cases) {
      const result = await jobs(['run', ...flags, ...signer, '--', 'uptime']);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${describeResult(result)}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    }
    assert.equal(await listed(), before);
  });

  test('a --spread label no node has still places, and explain says so; no eligible node exits 1', async () => {
    const run = await jobs(['run', '--spread', 'rack', ...ANY_STATUS, ...signer, '--json', '--', 'uptime']);
    assert.equal(run.code, 0, describeResult(run));
    const explain = await jobs(['explain', (JSON.parse(run.stdout) as JobView).id]);
    assert.match(explain.stdout, /note: spread: no eligible node has the label rack/);
    const none = await jobs(['run', '--require', 'minFreeMemoryBytes=1000TiB', ...signer, '--', 'uptime']);
    assert.equal(none.code, 1, describeResult(none));
    assert.match(none.stderr, /no node is eligible for this job/);
  });
});
