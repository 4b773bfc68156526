import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { NodeView, TokenCreated } from '@muster/proto';
import { reportedAfter, waitForNode } from '../support/fleet.js';
import { assertNoStackTrace, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// Two `muster agent` processes on one data dir would hold one identity and keep replacing each
// other's channel: the second is refused, and a lock left by a killed agent does not block the next.
describe('one agent per data dir', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let token: TokenCreated;
  let agentDir: string;

  before(async () => {
    server = await sandbox.startServer();
    token = await sandbox.json<TokenCreated>(['token', 'create', '--name', 'locked', ...server.adminFlags]);
    agentDir = sandbox.tempDir('agent');
  });
  after(() => sandbox.cleanup());

  const agentArgs = () => [
    'agent',
    '--server',
    server.agentUrl,
    '--ca-pin',
    token.caPin,
    '--data-dir',
    agentDir,
    '--name',
    'locked',
    '--log-level',
    'warn',
  ];

  test('a second agent on the same data dir exits 1 naming the pid that holds it; the first keeps reporting', async () => {
    // The token from a file named in the environment, as a service manager would give it.
    const tokenPath = join(sandbox.tempDir('secret'), 'join-token');
    writeFileSync(tokenPath, `${token.secret}\n`, { mode: 0o600 });
    const first = sandbox.spawn(agentArgs(), { MUSTER_JOIN_TOKEN_FILE: tokenPath });
    const enrolled = await waitForNode(sandbox, server, 'locked', 'reports', reportedAfter(null));

    const second = await sandbox.run(agentArgs());
    assert.equal(second.code, 1, describeResult(second));
    assert.equal(
      second.stderr.trim(),
      `muster agent: data dir in use by pid ${first.pid}: another muster agent runs on ${agentDir}; stop it first, or give this one its own --data-dir`,
    );
    assertNoStackTrace(second.stderr);

    // The first agent's channel was never replaced: it goes on reporting as the same node.
    assert.ok(first.running, first.transcript());
    const still = await waitForNode(
      sandbox,
      server,
      'locked',
      'reports again',
      reportedAfter(enrolled.lastSeenAt),
    );
    assert.equal(still.id, enrolled.id);
    assert.deepEqual(await first.stop('SIGTERM'), { code: 0, signal: null }, first.transcript());
  });

  test('a lock left by an agent killed with SIGKILL is taken over by the next agent', async () => {
    const killed = sandbox.spawn(agentArgs());
    const before = await waitForNode(
      sandbox,
      server,
      'locked',
      'reports',
      reportedAfter(new Date().toISOString()),
    );
    const lock = JSON.parse(readFileSync(join(agentDir, 'agent.lock'), 'utf8'));
    assert.equal(lock.pid, killed.pid);
    await killed.stop('SIGKILL');
    // The stale lock is still there, naming a pid that no longer runs.
    assert.equal(JSON.parse(readFileSync(join(agentDir, 'agent.lock'), 'utf8')).pid, killed.pid);

    const next = sandbox.spawn(agentArgs());
    const after = await waitForNode(
      sandbox,
      server,
      'locked',
      'reports after the restart',
      reportedAfter(before.lastSeenAt),
    );
    assert.equal(after.id, before.id);
    assert.equal(JSON.parse(readFileSync(join(agentDir, 'agent.lock'), 'utf8')).pid, next.pid);
    assert.deepEqual(await next.stop('SIGTERM'), { code: 0, signal: null }, next.transcript());
    // A clean stop leaves the data dir free.
    assert.equal(existsSync(join(agentDir, 'agent.lock')), false);
    const nodes = await sandbox.json<NodeView[]>(['nodes', 'ls', ...server.adminFlags]);
    assert.equal(nodes.length, 1, 'one node throughout');
  });
});
