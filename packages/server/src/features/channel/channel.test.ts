import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CHANNEL_CLOSE, type ChannelDown } from '@muster/proto';
import WebSocket from 'ws';
import {
  decisionsAbout,
  dialects,
  enrollAgent,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';

/** A channel client holding an agent's identity, with its messages queued for the test. */
function openChannel(t: TestServer, agent?: Pick<TestAgent, 'keyPem' | 'certPem'>) {
  const url = `${t.server.agentUrl.replace('https:', 'wss:')}/v1/agent/channel`;
  const ws = new WebSocket(url, {
    ca: t.server.identity.ca.pem,
    ...(agent ? { key: agent.keyPem, cert: agent.certPem } : {}),
  });
  const inbox: ChannelDown[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data) => {
    inbox.push(JSON.parse(String(data)));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  const refused = new Promise<number>((resolve) =>
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
  );
  ws.on('error', () => {});
  return {
    ws,
    closed,
    refused,
    opened: new Promise<void>((resolve) => ws.once('open', () => resolve())),
    /** The next message; fails (instead of hanging) when the channel closes first. */
    async next(): Promise<ChannelDown> {
      while (inbox.length === 0) {
        const ended = await Promise.race([
          new Promise<false>((resolve) => waiters.push(() => resolve(false))),
          closed.then((c) => c),
        ]);
        if (ended)
          throw new Error(`the channel closed (${ended.code} ${ended.reason}) before the next message`);
      }
      return inbox.shift()!;
    },
  };
}

for (const dialect of dialects()) {
  describe(`the agent channel (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test('heartbeats go up and answers come down over one WebSocket held on the node identity', async () => {
      const agent = await enrollAgent(t, { name: 'chan-1' });
      const channel = openChannel(t, agent);
      await channel.opened;
      assert.deepEqual(await channel.next(), { type: 'settings', heartbeatIntervalSec: 10 });
      channel.ws.send(JSON.stringify({ type: 'heartbeat', heartbeat: sampleHeartbeat(7) }));
      const answer = await channel.next();
      assert.equal(answer.type, 'ack');
      assert.equal(answer.type === 'ack' && answer.seq, 7);
      assert.equal(answer.type === 'ack' && answer.ack.nodeId, agent.nodeId);
      const shown = await t.admin('GET', `/v1/nodes/${agent.nodeId}`);
      assert.equal(shown.json.latest.seq, 7);
      const metrics = await t.server.app.admin.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${t.server.identity.adminToken}` },
      });
      assert.match(metrics.body, /^muster_channels_held 1$/m);
      assert.match(metrics.body, /^muster_heartbeats_received_total\{transport="channel"\} 1$/m);
      channel.ws.close();
      await channel.closed;
      agent.agent.destroy();
    });

    test('no client certificate: the upgrade is refused with 401', async () => {
      const channel = openChannel(t);
      assert.equal(await channel.refused, 401);
    });

    test('a bad heartbeat is answered 400 and changes nothing; junk closes the channel', async () => {
      const agent = await enrollAgent(t, { name: 'chan-2' });
      const channel = openChannel(t, agent);
      await channel.opened;
      await channel.next(); // settings
      const before = (await t.admin('GET', `/v1/nodes/${agent.nodeId}`)).json.latest;
      for (const heartbeat of [
        { ...sampleHeartbeat(1), cpuPct: -1 },
        {
          ...sampleHeartbeat(2),
          disks: Array.from({ length: 15_000 }, () => ({ mount: '/', totalBytes: 1, freeBytes: 1 })),
        },
        { ...sampleHeartbeat(3), load: [1e300, 0, 0] },
      ]) {
        channel.ws.send(JSON.stringify({ type: 'heartbeat', heartbeat }));
        const answer = await channel.next();
        assert.equal(answer.type, 'error');
        assert.equal(answer.type === 'error' && answer.status, 400);
      }
      assert.deepEqual((await t.admin('GET', `/v1/nodes/${agent.nodeId}`)).json.latest, before);
      channel.ws.send('not json');
      assert.equal((await channel.closed).code, CHANNEL_CLOSE.protocol);
      // A message over 1 MiB (100,000 disks) is not read at all: the channel is closed (1009).
      const big = openChannel(t, agent);
      await big.opened;
      await big.next();
      const disks = Array.from({ length: 100_000 }, () => ({ mount: '/', totalBytes: 1, freeBytes: 1 }));
      big.ws.send(JSON.stringify({ type: 'heartbeat', heartbeat: { ...sampleHeartbeat(4), disks } }));
      assert.equal((await big.closed).code, 1009);
      assert.deepEqual((await t.admin('GET', `/v1/nodes/${agent.nodeId}`)).json.latest, before);
      agent.agent.destroy();
    });

    test('a second channel for one identity closes the first and is recorded', async () => {
      const agent = await enrollAgent(t, { name: 'chan-3' });
      const first = openChannel(t, agent);
      await first.opened;
      const second = openChannel(t, agent);
      await second.opened;
      assert.equal((await first.closed).code, CHANNEL_CLOSE.superseded);
      await second.next(); // settings: the newer channel works
      // Recorded right after the takeover, in its own write: poll for it with a bound.
      let kinds: string[] = [];
      for (let i = 0; i < 100 && !kinds.includes('security.duplicate_channel'); i++) {
        if (i > 0) await new Promise((resolve) => setTimeout(resolve, 20));
        kinds = (await decisionsAbout(t, `node:${agent.nodeId}`)).map((d) => d.kind);
      }
      assert.ok(kinds.includes('security.duplicate_channel'), kinds.join(', '));
      second.ws.close();
      agent.agent.destroy();
    });

    test('decommissioned mid-stream: the channel is closed at once, and it cannot come back', async () => {
      const agent = await enrollAgent(t, { name: 'chan-4' });
      const channel = openChannel(t, agent);
      await channel.opened;
      await channel.next();
      assert.equal((await t.admin('DELETE', `/v1/nodes/${agent.nodeId}`)).status, 204);
      await channel.closed; // no timeout needed: the test fails by hanging if it never closes
      assert.equal(await openChannel(t, agent).refused, 401);
      agent.agent.destroy();
    });

    test('an agent reconnecting in a tight loop is turned away after a burst', async () => {
      const agent = await enrollAgent(t, { name: 'chan-5' });
      const answers: number[] = [];
      for (let i = 0; i < 8; i++) {
        const channel = openChannel(t, agent);
        const outcome = await Promise.race([channel.opened.then(() => 101), channel.refused]);
        answers.push(outcome);
        channel.ws.close();
        if (outcome === 101) await channel.closed;
      }
      assert.deepEqual(answers.slice(0, 5), [101, 101, 101, 101, 101]);
      assert.ok(
        answers.slice(5).every((s) => s === 429),
        `then 429: ${answers.join(',')}`,
      );
      agent.agent.destroy();
    });
  });
}
