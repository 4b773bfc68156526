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

    // The demo comes with an operator and a signed policy: the command it suggests runs everywhere.
    const key = /npx muster run --key (\S+) --operator demo --target all --wait -- uptime/.exec(
      demo.stdout,
    )?.[1];
    assert.ok(key, `no muster run line in:\n${demo.stdout}`);
    const run = await sandbox.run([
      'run',
      '--key',
      key,
      '--operator',
      'demo',
      '--target',
      'all',
      '--wait',
      '--url',
      adminUrl,
      '--data-dir',
      dataDir,
      '--',
      'uptime',
    ]);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /3 node\(s\): 3 succeeded/);

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
