import assert from 'node:assert/strict';
import { chmodSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { NodeView, TokenCreated, TokenView } from '@muster/proto';
import { agentArgsFromJoinLine, waitForNode } from '../support/fleet.js';
import { assertNoStackTrace, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// What a user gets wrong, and what Muster answers: a wrong pin, bad flags, a missing server,
// a key file left open to others. Each answer is an exit code and one clear sentence.
describe('refusals', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;

  before(async () => {
    server = await sandbox.startServer();
  });
  after(() => sandbox.cleanup());

  test('an agent given the wrong CA pin refuses to enroll and leaves the token unused', async () => {
    const token = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'pinned',
      ...server.adminFlags,
    ]);
    const pinHex = token.caPin.slice('sha256:'.length);
    const wrongPin = `sha256:${pinHex.replace(/./g, (c) => (c === '0' ? '1' : '0'))}`;
    const agentDir = sandbox.tempDir('agent');
    const args = agentArgsFromJoinLine(token.agentCommand, server.agentUrl);
    assert.match(token.agentCommand, / --name pinned$/);

    const refused = await sandbox.run([
      ...args.map((a) => (a === token.caPin ? wrongPin : a)),
      '--data-dir',
      agentDir,
    ]);
    assert.equal(refused.code, 1, describeResult(refused));
    assert.equal(refused.stderr.trim().split('\n').length, 1, `not one line:\n${refused.stderr}`);
    assert.match(
      refused.stderr,
      /^muster agent: the server at this address is not the one the join line names/,
    );
    assert.match(refused.stderr, new RegExp(wrongPin));
    assertNoStackTrace(refused.stderr);
    assert.equal(existsSync(join(agentDir, 'identity.json')), false);

    const tokens = await sandbox.json<TokenView[]>(['token', 'ls', ...server.adminFlags]);
    const unused = tokens.find((t) => t.id === token.id);
    assert.equal(unused?.usesLeft, 1);
    assert.equal(unused?.state, 'active');

    // The same token with the right pin still enrolls: the refusal cost nothing.
    const agent = sandbox.spawn([...args, '--data-dir', agentDir]);
    await waitForNode(sandbox, server, 'pinned', 'reports', (n) => n.lastSeenAt !== null);
    assert.deepEqual(await agent.stop('SIGTERM'), { code: 0, signal: null }, agent.transcript());
  });

  test('listing, show and change verbs with --json print only JSON', async () => {
    const token = await sandbox.json<TokenCreated>(['token', 'create', '--ttl', '10m', ...server.adminFlags]);
    assert.equal(typeof token.secret, 'string');
    const revoked = await sandbox.json(['token', 'revoke', token.id, ...server.adminFlags]);
    assert.deepEqual(revoked, { id: token.id, revoked: true });
    const tokens = await sandbox.json<TokenView[]>(['token', 'ls', ...server.adminFlags]);
    assert.equal(tokens.find((t) => t.id === token.id)?.state, 'revoked');

    const nodes = await sandbox.json<NodeView[]>([
      'nodes',
      'ls',
      '--profile',
      'default',
      ...server.adminFlags,
    ]);
    assert.deepEqual(
      nodes.map((n) => n.name),
      ['pinned'],
    );
    const shown = await sandbox.json<NodeView>(['nodes', 'show', 'pinned', ...server.adminFlags]);
    assert.equal(shown.name, 'pinned');
    const removed = await sandbox.json(['nodes', 'decommission', shown.id, ...server.adminFlags]);
    assert.deepEqual(removed, { node: shown.id, decommissioned: true });
    const none = await sandbox.json<NodeView[]>(['nodes', 'ls', ...server.adminFlags]);
    assert.deepEqual(none, []);
  });

  test('a server whose CA key is readable by others refuses to start and says how to fix it', async () => {
    assert.deepEqual(await server.process.stop('SIGTERM'), { code: 0, signal: null });
    const caKey = join(server.dataDir, 'ca.key');
    chmodSync(caKey, 0o644);
    const result = await sandbox.run([
      'server',
      '--data-dir',
      server.dataDir,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
    ]);
    assert.equal(result.code, 1, describeResult(result));
    assert.ok(result.stderr.includes(caKey), `the message does not name ${caKey}:\n${result.stderr}`);
    assert.ok(result.stderr.includes(`chmod 600 ${caKey}`), `no chmod fix in:\n${result.stderr}`);
    assertNoStackTrace(result.stderr);
  });
});

describe('bad input on the command line', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('a server with three bad settings lists all three in one message and exits 2', async () => {
    const result = await sandbox.run([
      'server',
      '--data-dir',
      sandbox.tempDir('server'),
      '--listen',
      'nonsense',
      '--cert-lifetime',
      'abc',
      '--log-level',
      'loud',
    ]);
    assert.equal(result.code, 2, describeResult(result));
    assert.match(result.stderr, /^muster server: invalid configuration:$/m);
    assert.match(result.stderr, /--listen: "nonsense"/);
    assert.match(result.stderr, /--cert-lifetime: "abc"/);
    assert.match(result.stderr, /--log-level: "loud"/);
    assertNoStackTrace(result.stderr);
  });

  test('an agent with no identity and no token says what it needs and exits 2 (usage)', async () => {
    const agentDir = sandbox.tempDir('agent');
    const result = await sandbox.run(['agent', '--data-dir', agentDir]);
    assert.equal(result.code, 2, describeResult(result));
    assert.match(result.stderr, new RegExp(`no identity in ${agentDir}`));
    assert.match(result.stderr, /needs --server, --ca-pin, --token/);
    assert.match(result.stderr, /muster token create/);
    assertNoStackTrace(result.stderr);
  });

  test('an agent with a renewal fraction of 0, 1, -1 or abc refuses to start, exit 2', async () => {
    for (const fraction of ['0', '1', '-1', 'abc']) {
      const result = await sandbox.run([
        'agent',
        `--renew-fraction=${fraction}`,
        '--data-dir',
        sandbox.tempDir('agent'),
      ]);
      assert.equal(result.code, 2, describeResult(result));
      assert.match(
        result.stderr,
        new RegExp(`--renew-fraction: "${fraction}" must be a number strictly between 0 and 1`),
      );
      assertNoStackTrace(result.stderr);
    }
  });

  test('an admin verb against a port where nothing listens cannot reach it and exits 1', async () => {
    const port = await unusedPort();
    const result = await sandbox.run(['nodes', 'ls', '--url', `http://127.0.0.1:${port}`, '--token', 'x']);
    assert.equal(result.code, 1, describeResult(result));
    assert.match(
      result.stderr,
      new RegExp(`cannot reach the control plane at http://127\\.0\\.0\\.1:${port}`),
    );
    assertNoStackTrace(result.stderr);
  });

  test('an unknown command and a bad flag value are usage errors, exit 2', async () => {
    const bogus = await sandbox.run(['bogus']);
    assert.equal(bogus.code, 2, describeResult(bogus));
    assert.match(bogus.stderr, /unknown command "bogus"/);

    const uses = await sandbox.run(['token', 'create', '--uses', '0', '--token', 'x']);
    assert.equal(uses.code, 2, describeResult(uses));
    assert.match(uses.stderr, /--uses: "0" is not a positive whole number/);
    assertNoStackTrace(uses.stderr);
  });
});

/** A loopback port nothing listens on: the OS hands one out, and it is closed again at once. */
function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
