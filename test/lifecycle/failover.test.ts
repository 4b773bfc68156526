import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TokenCreated, TokenView } from '@muster/proto';
import { agentArgsFromJoinLine, assertHealthy, reportedAfter, waitForNode } from '../support/fleet.js';
import { closedPort } from '../support/ports.js';
import { type MusterProcess, waitFor } from '../support/processes.js';
import { Sandbox, type ServerUnderTest } from '../support/sandbox.js';

/** `muster_channels_held` on one replica: which replica holds the agent's channel. */
async function channelsHeld(server: ServerUnderTest): Promise<number> {
  const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
  const text = await (
    await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  ).text();
  return Number(/^muster_channels_held (\d+)$/m.exec(text)?.[1] ?? 0);
}

/** The agent's "cannot reach" lines, one per server that failed. */
function unreachableLines(agent: MusterProcess): Array<Record<string, unknown>> {
  return agent.logLines().filter((l) => String(l.msg).startsWith('cannot reach the control plane at '));
}

const dialect = process.env.MUSTER_TEST_PG_URL ? 'postgres' : 'sqlite';

// CONTRACT section 6: an agent given every replica's URL moves to another when its replica is
// lost, and back when that one is lost in turn. Real processes, killed with SIGKILL.
describe(`an agent with two --server URLs fails over between two replicas (${dialect})`, () => {
  const sandbox = new Sandbox();
  let a: ServerUnderTest;
  let b: ServerUnderTest;
  let db: string | undefined;
  let agent: MusterProcess;
  before(async () => {
    db = dialect === 'postgres' ? await sandbox.postgresDatabase() : undefined;
    a = await sandbox.startServer(db ? { db } : {});
    // One control plane: the same store and data dir (so the same fleet CA), its own ports.
    b = await sandbox.startServer({ dataDir: a.dataDir, ...(db ? { db } : {}) });
  });
  after(() => sandbox.cleanup());

  test('kill -9 the replica it reports to: it reports through the other; restarted, nothing breaks', async () => {
    const join_ = await sandbox.json<TokenCreated>(['token', 'create', '--name', 'twin', ...a.adminFlags]);
    agent = sandbox.spawn([
      ...agentArgsFromJoinLine(join_.agentCommand, a.agentUrl),
      '--server',
      b.agentUrl,
      '--data-dir',
      sandbox.tempDir('agent'),
    ]);
    await waitForNode(sandbox, a, 'twin', 'reports', reportedAfter(null));
    await waitFor('replica A to hold the channel', async () =>
      (await channelsHeld(a)) === 1 ? true : undefined,
    );

    await a.process.stop('SIGKILL');
    const killedAt = new Date().toISOString();
    const viaB = await waitForNode(
      sandbox,
      b,
      'twin',
      'reports through B',
      (n) => reportedAfter(killedAt)(n) && n.status !== 'offline',
    );
    assertHealthy(viaB);
    await waitFor('replica B to hold the channel', async () =>
      (await channelsHeld(b)) === 1 ? true : undefined,
    );
    const lost = unreachableLines(agent);
    assert.ok(
      lost.some((l) => l.msg === `cannot reach the control plane at ${a.agentUrl}` && l.next === b.agentUrl),
      agent.stderr,
    );

    // A comes back where it was: the agent stays with B, which works, and A serves the fleet again.
    const portOf = (url: string) => `127.0.0.1:${new URL(url).port}`;
    a = await sandbox.startServer({
      dataDir: a.dataDir,
      ...(db ? { db } : {}),
      listen: portOf(a.agentUrl),
      adminListen: portOf(a.adminUrl),
    });
    const restartedAt = new Date().toISOString();
    assertHealthy(
      await waitForNode(sandbox, a, 'twin', 'reports after the restart', reportedAfter(restartedAt)),
    );
    assert.equal(await channelsHeld(b), 1, 'the agent stayed with the replica that kept working');

    // Then B is lost: the agent goes back to A.
    await b.process.stop('SIGKILL');
    const bKilledAt = new Date().toISOString();
    assertHealthy(
      await waitForNode(
        sandbox,
        a,
        'twin',
        'reports through A again',
        (n) => reportedAfter(bKilledAt)(n) && n.status !== 'offline',
      ),
    );
    await waitFor('replica A to hold the channel again', async () =>
      (await channelsHeld(a)) === 1 ? true : undefined,
    );
    assert.ok(agent.running, 'the agent kept running throughout');
    assert.doesNotMatch(agent.stderr, /"level":50/, 'and logged no error');
  });
});

describe('an agent given unreachable server URLs', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('with a good URL among closed ports it enrolls and reports through the good one, naming the bad one', async () => {
    const server = await sandbox.startServer();
    const closed = `https://127.0.0.1:${await closedPort()}`;
    const join_ = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'mixed',
      ...server.adminFlags,
    ]);
    // The closed port comes first, so the agent has to move past it to enroll at all.
    const args = agentArgsFromJoinLine(join_.agentCommand, closed);
    const agent = sandbox.spawn([
      ...args,
      '--server',
      server.agentUrl,
      '--data-dir',
      sandbox.tempDir('agent'),
    ]);
    assertHealthy(await waitForNode(sandbox, server, 'mixed', 'reports', reportedAfter(null)));
    const lines = unreachableLines(agent);
    assert.ok(lines.length >= 1, agent.stderr);
    for (const line of lines) {
      assert.equal(line.msg, `cannot reach the control plane at ${closed}`);
      assert.equal(line.next, server.agentUrl);
      assert.match(String(line.error), /ECONNREFUSED/);
    }
    assert.match(agent.stderr, /"msg":"enrolled"/);
  });

  test('with only closed ports it keeps trying, one line per URL per round, the delays growing', async () => {
    const urls = [`https://127.0.0.1:${await closedPort()}`, `https://127.0.0.1:${await closedPort()}`];
    const agent = sandbox.spawn(
      [
        'agent',
        '--server',
        urls[0]!,
        '--server',
        urls[1]!,
        '--ca-pin',
        `sha256:${'ab'.repeat(32)}`,
        '--token',
        'mjt_never-sent',
        '--data-dir',
        sandbox.tempDir('agent'),
      ],
      {},
    );
    const startedAt = Date.now();
    // Three backoff steps: windows of 2, 4 and 8 s, so the wait for them is bounded by 14 s.
    await waitFor('three rounds of backoff', async () =>
      unreachableLines(agent).filter((l) => l.backoffWindowMs !== undefined).length >= 3 ? true : undefined,
    );
    const elapsedSec = (Date.now() - startedAt) / 1000;
    assert.ok(agent.running, 'the agent is still up');
    const lines = unreachableLines(agent);
    const windows = lines.flatMap((l) =>
      l.backoffWindowMs === undefined ? [] : [Number(l.backoffWindowMs)],
    );
    assert.deepEqual(windows.slice(0, 3), [2000, 4000, 8000], 'each round backs off twice as long');
    for (const url of urls)
      assert.ok(lines.filter((l) => l.msg === `cannot reach the control plane at ${url}`).length >= 3, url);
    // No tight loop: two lines (one per URL) per round, and at most a few rounds in that time.
    assert.ok(lines.length <= 2 * (windows.length + 1), `${lines.length} lines in ${elapsedSec} s`);
    assert.ok(lines.length < 20, `${lines.length} lines in ${elapsedSec} s`);
    await agent.stop('SIGTERM');
  });
});

describe('every server in the list is held to the --ca-pin', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('a server with another CA is skipped for one that matches; when none matches the agent stops', async () => {
    const server = await sandbox.startServer();
    // Another control plane altogether: its own data dir, so its own fleet CA.
    const impostor = await sandbox.startServer();
    const join_ = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'pinned',
      ...server.adminFlags,
    ]);
    const args = agentArgsFromJoinLine(join_.agentCommand, impostor.agentUrl);
    const agent = sandbox.spawn([
      ...args,
      '--server',
      server.agentUrl,
      '--data-dir',
      sandbox.tempDir('agent'),
    ]);
    assertHealthy(await waitForNode(sandbox, server, 'pinned', 'reports', reportedAfter(null)));
    const refused = agent
      .logLines()
      .find((l) => l.msg === `refusing the server that fails the --ca-pin at ${impostor.agentUrl}`);
    assert.ok(refused, agent.stderr);
    assert.match(String(refused.error), /^the server at this address is not the one the join line names: /);
    assert.equal(refused.next, server.agentUrl);

    // A pin that neither server matches: the token goes nowhere, and the agent says why and exits.
    const other = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'nowhere',
      ...server.adminFlags,
    ]);
    const wrongPin = agentArgsFromJoinLine(other.agentCommand, impostor.agentUrl);
    wrongPin[wrongPin.indexOf('--ca-pin') + 1] = `sha256:${'ab'.repeat(32)}`;
    const lost = sandbox.spawn([
      ...wrongPin,
      '--server',
      server.agentUrl,
      '--data-dir',
      sandbox.tempDir('lost'),
    ]);
    const exit = await lost.waitForExit();
    assert.equal(exit.code, 1, lost.transcript());
    assert.match(lost.stderr, /the server at this address is not the one the join line names/);
    const tokens = await sandbox.json<TokenView[]>(['token', 'ls', ...server.adminFlags]);
    const unused = tokens.find((t) => t.name === 'nowhere');
    assert.equal(unused?.usesLeft, unused?.usesTotal, 'the token is still unused');
  });
});
