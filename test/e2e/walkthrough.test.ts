import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CaStatus, NodeView, TokenCreated } from '@muster/proto';
import {
  agentArgsFromJoinLine,
  assertHealthy,
  reportedAfter,
  showNode,
  waitForNode,
} from '../support/fleet.js';
import { type MusterProcess, waitFor } from '../support/processes.js';
import { describeResult, dialects, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// The README's deployment walkthrough, run as a user would: a server, a join token, the printed
// agent line on "another host" (its own data dir), then the agent's life: restart, loss, removal.
for (const dialect of dialects()) {
  describe(`deployment walkthrough on ${dialect}`, () => {
    const sandbox = new Sandbox();
    let server: ServerUnderTest;
    let agentDir: string;
    let agent: MusterProcess;
    let name: string;
    let nodeId: string;

    before(async () => {
      server = await sandbox.startServer(
        dialect === 'postgres' ? { db: await sandbox.postgresDatabase() } : {},
      );
      agentDir = sandbox.tempDir('agent');
    });
    after(() => sandbox.cleanup());

    test('the printed agent line enrolls a node with the token profile and labels', async () => {
      const token = await sandbox.json<TokenCreated>([
        'token',
        'create',
        '--profile',
        'web',
        '--label',
        'env=prod',
        ...server.adminFlags,
      ]);
      assert.match(token.agentCommand, new RegExp(`--ca-pin ${token.caPin} `));
      assert.ok(token.agentCommand.startsWith(`printf '%s' '${token.secret}' | muster agent `));
      assert.match(token.agentCommand, / --token-file -$/);

      agent = sandbox.spawn([
        ...agentArgsFromJoinLine(token.agentCommand, server.agentUrl),
        '--data-dir',
        agentDir,
      ]);
      const node = await waitForListed(sandbox, server, agent);
      assert.equal(node.profile, 'web');
      assert.deepEqual(node.labels, { env: 'prod' });
      name = node.name;
      nodeId = node.id;

      const reporting = await waitForNode(sandbox, server, name, 'reports', reportedAfter(null));
      assertHealthy(reporting);
      assert.equal(reporting.id, nodeId);

      const shown = await sandbox.run(['nodes', 'show', name, ...server.adminFlags]);
      assert.equal(shown.code, 0, describeResult(shown));
      assert.match(shown.stdout, new RegExp(`^${name} {2}\\(${nodeId}\\)$`, 'm'));
      assert.match(shown.stdout, new RegExp(`^ {2}status {6}${reporting.status}$`, 'm'));
      assert.match(shown.stdout, /^ {2}labels {6}env=prod$/m);

      const tokens = await sandbox.json<Array<{ id: string; usesLeft: number }>>([
        'token',
        'ls',
        ...server.adminFlags,
      ]);
      assert.equal(tokens.find((t) => t.id === token.id)?.usesLeft, 0);
    });

    test('the key stays on the host, readable by its owner only', () => {
      assert.equal(statSync(join(agentDir, 'node.key')).mode & 0o777, 0o600);
      assert.equal(statSync(agentDir).mode & 0o077, 0, 'the agent data dir is open to others');
    });

    test('SIGTERM stops the agent cleanly', async () => {
      const exit = await agent.stop('SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null }, agent.transcript());
    });

    test('restarted without a token, the agent resumes with its stored identity', async () => {
      const before = await showNode(sandbox, server, name);
      agent = sandbox.spawn(['agent', '--data-dir', agentDir]);
      const resumed = await waitForNode(
        sandbox,
        server,
        name,
        'reports again',
        reportedAfter(before.lastSeenAt),
      );
      assert.equal(resumed.id, nodeId);
      assertHealthy(resumed);
      const listed = await sandbox.json<NodeView[]>(['nodes', 'ls', ...server.adminFlags]);
      assert.deepEqual(
        listed.map((n) => n.id),
        [nodeId],
        'resuming must not enroll a second node',
      );
    });

    test('muster nodes rotate moves the running agent onto a fresh key, without a restart', async () => {
      const before = await showNode(sandbox, server, name);
      const keyBefore = readFileSync(join(agentDir, 'node.key'), 'utf8');
      const rotated = await sandbox.run(['nodes', 'rotate', name, ...server.adminFlags]);
      assert.equal(rotated.code, 0, describeResult(rotated));
      assert.match(
        rotated.stdout,
        new RegExp(`^Node ${name} will renew onto a fresh key at its next heartbeat`),
      );
      const after = await waitForNode(
        sandbox,
        server,
        name,
        'is on a new certificate',
        (n) =>
          n.cert.serial !== before.cert.serial &&
          n.cert.pending === null &&
          n.cert.rotationRequestedAt === null,
      );
      assertHealthy(after);
      assert.notEqual(readFileSync(join(agentDir, 'node.key'), 'utf8'), keyBefore);
      assert.equal(statSync(join(agentDir, 'node.key')).mode & 0o777, 0o600);
      const shown = await sandbox.run(['nodes', 'show', name, ...server.adminFlags]);
      assert.match(shown.stdout, new RegExp(`certificate serial ${after.cert.serial}`));
      assert.match(shown.stdout, /issued by CN=Muster fleet CA /);
      assert.equal(agent.running, true, 'the agent never restarted');
      const ca = await sandbox.json<CaStatus>(['ca', 'status', ...server.adminFlags]);
      assert.deepEqual(ca.nodes, { active: 1, onThisCa: 1, onOtherCa: 0 });
      assert.deepEqual(ca.warnings, []);
      const caText = await sandbox.run(['ca', 'status', ...server.adminFlags]);
      assert.match(caText.stdout, /^fleet CA {4}CN=Muster fleet CA /);
      assert.match(caText.stdout, /1 active: 1 on this CA, 0 on another root/);
    });

    test('a node whose agent dies goes offline, and says why', async () => {
      await agent.stop('SIGKILL');
      const offline = await waitForNode(sandbox, server, name, 'goes offline', (n) => n.status === 'offline');
      assert.match(offline.reasons[0] ?? '', /^no heartbeat for \d+ s \(expected every 1 s\)$/);
      const listed = await sandbox.json<NodeView[]>([
        'nodes',
        'ls',
        '--status',
        'offline',
        ...server.adminFlags,
      ]);
      assert.deepEqual(
        listed.map((n) => n.name),
        [name],
      );
    });

    test('a decommissioned node is refused by the server and its agent says so', async () => {
      const before = await showNode(sandbox, server, name);
      agent = sandbox.spawn(['agent', '--data-dir', agentDir]);
      await waitForNode(sandbox, server, name, 'reports again', reportedAfter(before.lastSeenAt));

      const removed = await sandbox.run(['nodes', 'decommission', name, ...server.adminFlags]);
      assert.equal(removed.code, 0, describeResult(removed));
      assert.match(removed.stdout, new RegExp(`^Node ${name} decommissioned`));

      const refusal = await agent.waitForOutput('the agent to log that its identity is refused', (p) =>
        p.logLines().find((line) => line.level === 50 && /refuses this node identity/.test(String(line.msg))),
      );
      assert.match(String(refusal.msg), new RegExp(`muster token create --name ${name}`));

      const shown = await showNode(sandbox, server, name);
      assert.equal(shown.status, 'decommissioned');
      assert.equal(shown.id, nodeId);
      const listed = await sandbox.json<NodeView[]>([
        'nodes',
        'ls',
        '--status',
        'decommissioned',
        ...server.adminFlags,
      ]);
      assert.deepEqual(
        listed.map((n) => n.id),
        [nodeId],
      );
      assert.deepEqual(await agent.stop('SIGTERM'), { code: 0, signal: null }, agent.transcript());
    });
  });
}

/** Polls `nodes ls --json` until the agent's node appears. */
function waitForListed(sandbox: Sandbox, server: ServerUnderTest, agent: MusterProcess): Promise<NodeView> {
  return waitFor('the agent to enroll', async () => {
    if (!agent.running) throw new Error(`the agent exited before enrolling\n${agent.transcript()}`);
    const nodes = await sandbox.json<NodeView[]>(['nodes', 'ls', ...server.adminFlags]);
    assert.ok(nodes.length <= 1, `one agent enrolled ${nodes.length} nodes`);
    return nodes[0];
  });
}
