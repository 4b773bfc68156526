import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { NodeView } from '@muster/proto';
import { type MusterProcess, waitFor } from '../support/processes.js';
import { Sandbox } from '../support/sandbox.js';

const CTRL_C_BOUND_MS = 10_000;
const DEMO_PROFILES = { 'batch-1': 'batch', 'db-1': 'db', 'web-1': 'web' };

// `npm start`: a control plane and three agents in one process, stopped with Ctrl-C.
describe('muster demo', () => {
  const sandbox = new Sandbox();
  const dataDir = sandbox.tempDir('demo');
  let firstIds: Record<string, string>;
  let stoppedAt: string;
  after(() => sandbox.cleanup());

  test('runs a control plane with three agents, prints where to look, and stops on Ctrl-C', async () => {
    const { demo, adminUrl } = await startDemo();
    const nodes = await waitForDemoNodes(adminUrl, (n) => n.lastSeenAt !== null);
    assert.deepEqual(Object.fromEntries(nodes.map((n) => [n.name, n.profile])), DEMO_PROFILES);
    firstIds = Object.fromEntries(nodes.map((n) => [n.name, n.id]));

    // The hints run as printed, from this folder: on ports other than the defaults they carry
    // --url and --data-dir, and none relies on npx (the npm registry's `muster` is another program).
    assert.doesNotMatch(demo.stdout, /npx /);
    const hints = [...demo.stdout.matchAll(/^ {2}muster (.+)$/gm)].map((m) => m[1]!.split(/\s+/));
    assert.ok(hints.length >= 4, demo.stdout);
    for (const hint of hints) {
      assert.ok(hint.join(' ').includes(`--url ${adminUrl} --data-dir ${dataDir}`), hint.join(' '));
    }
    const ls = await sandbox.run(hints.find((h) => h[0] === 'nodes' && h[1] === 'ls')!);
    assert.equal(ls.code, 0, `${ls.stdout}\n${ls.stderr}`);
    assert.match(ls.stdout, /^web-1 /m);

    // The demo comes with an operator and a signed policy: the command it suggests runs everywhere.
    const run = await sandbox.run(hints.find((h) => h[0] === 'run')!);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /3 node\(s\): 3 succeeded/);

    // Its stdout is a pipe here, as under systemd: no sign-in code in it, but how to make one.
    assert.doesNotMatch(demo.stdout, /#code=/);
    const link = await sandbox.run(['console', 'link', '--url', adminUrl, '--data-dir', dataDir]);
    assert.equal(link.code, 0, `${link.stdout}\n${link.stderr}`);
    assert.match(demo.stdout, /muster console link --url /);

    // Bounded well below anything a user would wait out: Ctrl-C must stop the demo promptly.
    demo.signal('SIGINT');
    const exit = await demo.waitForExit(CTRL_C_BOUND_MS);
    assert.deepEqual(exit, { code: 0, signal: null }, demo.transcript());
    assert.match(demo.stdout, /stopping/);
    stoppedAt = new Date().toISOString();
  });

  test('run again on the same data dir, it resumes the same three nodes', async () => {
    const { demo, adminUrl } = await startDemo();
    const nodes = await waitForDemoNodes(
      adminUrl,
      (n) => n.lastSeenAt !== null && Date.parse(n.lastSeenAt) > Date.parse(stoppedAt),
    );
    assert.deepEqual(Object.fromEntries(nodes.map((n) => [n.name, n.id])), firstIds);
    demo.signal('SIGINT');
    assert.deepEqual(await demo.waitForExit(CTRL_C_BOUND_MS), { code: 0, signal: null }, demo.transcript());
  });

  async function startDemo(): Promise<{ demo: MusterProcess; adminUrl: string }> {
    const demo = sandbox.spawn([
      'demo',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
    ]);
    await demo.waitForOutput('the demo to say it is running', (p) =>
      p.stdout.includes('Muster demo is running') ? true : undefined,
    );
    const adminUrl = /^ {2}admin API +(http:\/\/127\.0\.0\.1:\d+)$/m.exec(demo.stdout)?.[1];
    assert.ok(adminUrl, `no admin URL in:\n${demo.stdout}`);
    const tokenFile = /^ {2}admin token +(.+)$/m.exec(demo.stdout)?.[1];
    assert.equal(tokenFile, join(dataDir, 'admin.token'));
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    return { demo, adminUrl };
  }

  /** Polls `nodes ls --json` until all three demo nodes are listed and each passes `accept`. */
  function waitForDemoNodes(adminUrl: string, accept: (n: NodeView) => boolean): Promise<NodeView[]> {
    return waitFor('the three demo nodes to report', async () => {
      const nodes = await sandbox.json<NodeView[]>(['nodes', 'ls', '--url', adminUrl, '--data-dir', dataDir]);
      return nodes.length === 3 && nodes.every(accept) ? nodes : undefined;
    });
  }
});
