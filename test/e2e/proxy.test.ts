import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine, assertHealthy, reportedAfter, waitForNode } from '../support/fleet.js';
import { closedPort } from '../support/ports.js';
import { waitFor } from '../support/processes.js';
import { Sandbox, type ServerUnderTest } from '../support/sandbox.js';

/** Every tinyproxy started, stopped by the suites' after hooks. */
const proxies: Array<() => void> = [];

const TINYPROXY = ['/usr/bin/tinyproxy', '/usr/sbin/tinyproxy'].find((p) => existsSync(p)) ?? 'tinyproxy';

/** A real tinyproxy in the foreground, allowed to CONNECT to `connectPort` only. */
async function startTinyproxy(
  sandbox: Sandbox,
  connectPort: number,
): Promise<{ url: string; log: () => string; stop: () => void }> {
  const dir = sandbox.tempDir('tinyproxy');
  const port = await closedPort();
  const logFile = join(dir, 'tinyproxy.log');
  const conf = join(dir, 'tinyproxy.conf');
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 60',
      `LogFile "${logFile}"`,
      'LogLevel Info',
      'Allow 127.0.0.1',
      `ConnectPort ${connectPort}`,
      'MaxClients 50',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(TINYPROXY, ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const stop = () => child.kill('SIGKILL');
  proxies.push(stop);
  await waitFor(`tinyproxy to listen on ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`tinyproxy exited (${child.exitCode}): ${output}`);
    return new Promise<true | undefined>((resolve) => {
      const probe = connect(port, '127.0.0.1');
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(undefined));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop,
  };
}

/** `muster_channels_held` on the server. */
async function channelsHeld(server: ServerUnderTest): Promise<number> {
  const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
  const text = await (
    await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  ).text();
  return Number(/^muster_channels_held (\d+)$/m.exec(text)?.[1] ?? 0);
}

/** CONNECT requests tinyproxy took to the agent plane. */
function connects(log: string, server: ServerUnderTest): number {
  const target = new URL(server.agentUrl).host.replace(/\./g, '\\.');
  return (
    log.match(new RegExp(`Request \\(file descriptor \\d+\\): CONNECT ${target} HTTP/1\\.1`, 'g')) ?? []
  ).length;
}

// CONTRACT section 12: agents honour HTTPS_PROXY / NO_PROXY (HTTP CONNECT; loopback included
// unless NO_PROXY names it), with mTLS end to end through the tunnel.
describe('an agent behind an HTTP CONNECT proxy (a real tinyproxy)', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let agentPort: number;
  const startAgent = async (name: string, env: Record<string, string>) => {
    const join_ = await sandbox.json<TokenCreated>(['token', 'create', '--name', name, ...server.adminFlags]);
    return sandbox.spawn(
      [...agentArgsFromJoinLine(join_.agentCommand, server.agentUrl), '--data-dir', sandbox.tempDir(name)],
      env,
    );
  };
  before(async () => {
    server = await sandbox.startServer();
    agentPort = Number(new URL(server.agentUrl).port);
  });
  after(async () => {
    for (const stop of proxies) stop();
    await sandbox.cleanup();
  });

  test('with HTTPS_PROXY it enrolls, heartbeats and holds its channel through the tunnel', async () => {
    const proxy = await startTinyproxy(sandbox, agentPort);
    const agent = await startAgent('proxied', { HTTPS_PROXY: proxy.url });
    assertHealthy(await waitForNode(sandbox, server, 'proxied', 'reports', reportedAfter(null)));
    await waitFor('the channel to open', async () =>
      /channel to the control plane is open/.test(agent.stderr) ? true : undefined,
    );
    // The pinned first contact, the enrollment, the kept-alive mTLS requests and the channel:
    // each its own tunnel, since nothing may reach the loopback server directly.
    const seen = connects(proxy.log(), server);
    assert.ok(seen >= 3, `tinyproxy took ${seen} CONNECTs:\n${proxy.log()}`);
    // The channel runs inside a tunnel too: with the proxy gone, the server loses it.
    assert.equal(await channelsHeld(server), 1);
    proxy.stop();
    await waitFor('the channel to go with the proxy', async () =>
      (await channelsHeld(server)) === 0 ? true : undefined,
    );
    await agent.stop('SIGTERM');
  });

  test('with NO_PROXY=127.0.0.1 it goes direct: the proxy sees nothing', async () => {
    const proxy = await startTinyproxy(sandbox, agentPort);
    const agent = await startAgent('direct', { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' });
    assertHealthy(await waitForNode(sandbox, server, 'direct', 'reports', reportedAfter(null)));
    assert.equal(connects(proxy.log(), server), 0, proxy.log());
    await agent.stop('SIGTERM');
  });

  test('a proxy that refuses the CONNECT is named in the log, and the agent keeps trying', async () => {
    const strict = await startTinyproxy(sandbox, 1); // allows CONNECT to port 1 only
    const agent = await startAgent('refused', { https_proxy: strict.url });
    const line = await waitFor('the refusal in the log', async () =>
      agent.logLines().find((l) => String(l.error ?? '').includes('refused CONNECT')),
    );
    assert.equal(line.msg, `cannot reach the control plane at ${server.agentUrl}`);
    assert.match(
      String(line.error),
      new RegExp(
        `^the proxy 127\\.0\\.0\\.1:\\d+ refused CONNECT to ${new URL(server.agentUrl).host}: HTTP/1\\.[01] 403`,
      ),
    );
    assert.ok(agent.running);
    await agent.stop('SIGTERM');
  });
});
