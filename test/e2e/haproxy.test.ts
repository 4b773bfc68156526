import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine, assertHealthy, reportedAfter, waitForNode } from '../support/fleet.js';
import { closedPort } from '../support/ports.js';
import { REPO_ROOT, waitFor } from '../support/processes.js';
import { Sandbox, type ServerUnderTest } from '../support/sandbox.js';

const HAPROXY = '/usr/sbin/haproxy';
/** The configuration the README documents, as shipped. */
const CONFIG = join(REPO_ROOT, 'deploy', 'haproxy', 'muster.cfg');

/** `muster_channels_held` on one replica. */
async function channelsHeld(server: ServerUnderTest): Promise<number> {
  const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
  const text = await (
    await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  ).text();
  return Number(/^muster_channels_held (\d+)$/m.exec(text)?.[1] ?? 0);
}

const hostPort = (url: string) => new URL(url).host;
const dialect = process.env.MUSTER_TEST_PG_URL ? 'postgres' : 'sqlite';

// CONTRACT section 6: a TCP (layer-4) load balancer in front passes mTLS through untouched. The
// shipped deploy/haproxy/muster.cfg, its addresses from the environment, run by a real HAProxy.
describe(`two replicas behind HAProxy (deploy/haproxy/muster.cfg, ${dialect})`, () => {
  const sandbox = new Sandbox();
  const replicas: ServerUnderTest[] = [];
  let haproxy: ChildProcess | undefined;
  let haproxyOutput = '';
  let lbUrl: string;
  before(async () => {
    const db = dialect === 'postgres' ? await sandbox.postgresDatabase() : undefined;
    const first = await sandbox.startServer(db ? { db } : {});
    replicas.push(first, await sandbox.startServer({ dataDir: first.dataDir, ...(db ? { db } : {}) }));
    const lbPort = await closedPort();
    lbUrl = `https://127.0.0.1:${lbPort}`;
    haproxy = spawn(HAPROXY, ['-f', CONFIG, '-db'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        MUSTER_LB_BIND: `127.0.0.1:${lbPort}`,
        MUSTER_REPLICA1: hostPort(replicas[0]!.agentUrl),
        MUSTER_REPLICA1_ADMIN: new URL(replicas[0]!.adminUrl).port,
        MUSTER_REPLICA2: hostPort(replicas[1]!.agentUrl),
        MUSTER_REPLICA2_ADMIN: new URL(replicas[1]!.adminUrl).port,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    haproxy.stdout!.on('data', (d) => (haproxyOutput += d));
    haproxy.stderr!.on('data', (d) => (haproxyOutput += d));
    await waitFor('HAProxy to listen', async () => {
      if (haproxy!.exitCode !== null)
        throw new Error(`haproxy exited (${haproxy!.exitCode}):\n${haproxyOutput}`);
      return new Promise<true | undefined>((resolve) => {
        const probe = connect(lbPort, '127.0.0.1');
        probe.once('connect', () => {
          probe.destroy();
          resolve(true);
        });
        probe.once('error', () => resolve(undefined));
      });
    });
  });
  after(async () => {
    haproxy?.kill('SIGKILL');
    await sandbox.cleanup();
  });

  test('an agent pointed at HAProxy enrolls and heartbeats; kill -9 its replica and it reconnects to the other', async () => {
    const [a, b] = replicas as [ServerUnderTest, ServerUnderTest];
    const join_ = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'balanced',
      ...a.adminFlags,
    ]);
    const agent = sandbox.spawn([
      ...agentArgsFromJoinLine(join_.agentCommand, lbUrl),
      '--data-dir',
      sandbox.tempDir('agent'),
    ]);
    // mTLS through the balancer: the replica accepts the node's heartbeats by its certificate.
    assertHealthy(await waitForNode(sandbox, a, 'balanced', 'reports through HAProxy', reportedAfter(null)));
    const holder = await waitFor('a replica to hold the channel', async () => {
      for (const r of replicas) if ((await channelsHeld(r)) === 1) return r;
      return undefined;
    });
    const other = holder === a ? b : a;
    // The /readyz checks pass on both replicas (the admin plane takes the check's Host header).
    assert.doesNotMatch(haproxyOutput, /is DOWN/, haproxyOutput);

    await holder.process.stop('SIGKILL');
    const killedAt = new Date().toISOString();
    assertHealthy(
      await waitForNode(
        sandbox,
        other,
        'balanced',
        'reports through the other replica',
        (n) => reportedAfter(killedAt)(n) && n.status !== 'offline',
      ),
    );
    await waitFor('the other replica to hold the channel', async () =>
      (await channelsHeld(other)) === 1 ? true : undefined,
    );
    assert.ok(agent.running, 'the agent kept running');
    // The health check took the killed replica out, and only that one.
    const name = `replica${replicas.indexOf(holder) + 1}`;
    await waitFor(`HAProxy to mark ${name} down`, async () =>
      new RegExp(`Server muster_agent_plane/${name} is DOWN`).test(haproxyOutput) ? true : undefined,
    );
    const down = new Set(
      [...haproxyOutput.matchAll(/Server muster_agent_plane\/(replica\d) is DOWN/g)].map((m) => m[1]),
    );
    assert.deepEqual([...down], [name], haproxyOutput);
    assert.match(haproxyOutput, /muster_agents muster_agent_plane\/replica[12]/, haproxyOutput);
  });
});
