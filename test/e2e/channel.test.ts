import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine } from '../support/fleet.js';
import { waitFor } from '../support/processes.js';
import { Sandbox } from '../support/sandbox.js';

// A real agent process holds one channel and reports through it; when it stops, the server
// lets the channel go.
describe('the agent channel between real processes', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('the agent reports over its channel, and the server sees it held and released', async () => {
    const server = await sandbox.startServer();
    const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    const metric = async (pattern: RegExp) => {
      const text = await (
        await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      ).text();
      return Number(pattern.exec(text)?.[1] ?? 0);
    };
    const join_ = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'chan-e2e',
      ...server.adminFlags,
    ]);
    const agent = sandbox.spawn([
      ...agentArgsFromJoinLine(join_.agentCommand, server.agentUrl),
      '--data-dir',
      sandbox.tempDir('agent'),
    ]);
    await waitFor('a heartbeat over the channel', async () =>
      (await metric(/^muster_heartbeats_received_total\{transport="channel"\} (\d+)$/m)) >= 1
        ? true
        : undefined,
    );
    assert.equal(await metric(/^muster_channels_held (\d+)$/m), 1);
    const exit = await agent.stop('SIGTERM');
    assert.equal(exit.code, 0);
    await waitFor('the server to release the channel', async () =>
      (await metric(/^muster_channels_held (\d+)$/m)) === 0 ? true : undefined,
    );
  });
});
