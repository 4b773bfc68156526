import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ChannelDown } from '@muster/proto';
import WebSocket from 'ws';
import {
  dialects,
  enrollAgent,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';

const INTERVAL_MS = 10_000;

for (const dialect of dialects()) {
  describe(`heartbeats are held to the interval the server told the node (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      // The default burst, not the harness's: this is the throttle's own test.
      t = await startTestServer(dialect, { settings: { 'heartbeat-burst': '5' } });
    });
    after(async () => {
      await t.close();
    });

    const rawPoints = async (agent: TestAgent, since: number) => {
      const until = new Date(t.clock.now() + 1000).toISOString();
      const res = await t.admin(
        'GET',
        `/v1/nodes/${agent.nodeId}/telemetry?since=${new Date(since).toISOString()}&until=${until}&step=raw`,
      );
      assert.equal(res.status, 200, res.body);
      return (res.json.points as unknown[]).length;
    };

    test('2,000 heartbeats back to back: beyond a small burst they are 429 with a retry-after, and telemetry stays bounded', async () => {
      const flooder = await enrollAgent(t, { name: 'flood-1' });
      const since = t.clock.now() - 1000;
      const statuses = new Map<number, number>();
      let refusal: Awaited<ReturnType<TestAgent['heartbeat']>> | undefined;
      try {
        for (let seq = 0; seq < 2000; seq++) {
          const res = await flooder.heartbeat(sampleHeartbeat(seq));
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 429) refusal ??= res;
        }
      } finally {
        flooder.agent.destroy();
      }
      assert.equal(statuses.get(202), 5, `accepted: ${JSON.stringify([...statuses])}`);
      assert.equal(statuses.get(429), 1995);
      assert.ok(refusal);
      assert.match(String(refusal.headers['content-type']), /^application\/problem\+json/);
      assert.equal(refusal.json.status, 429);
      assert.equal(refusal.json.code, 'rate_limited');
      assert.match(refusal.json.detail, /faster than every 10 s, the interval it was told; retry in \d+ s/);
      assert.ok(Number(refusal.headers['retry-after']) >= 1);
      // A handful of telemetry points for the burst (three), not five, let alone 2,000.
      assert.equal(await rawPoints(flooder, since), 3);
      const metrics = await t.admin('GET', '/metrics');
      assert.match(metrics.body, /^muster_heartbeats_throttled_total\{transport="http"\} 1995$/m);
    });

    test('a node sending too fast over its channel is answered with a throttle, and the channel stays open', async () => {
      const flooder = await enrollAgent(t, { name: 'flood-2' });
      const ws = new WebSocket(`${t.server.agentUrl.replace('https:', 'wss:')}/v1/agent/channel`, {
        ca: t.server.identity.ca.pem,
        key: flooder.keyPem,
        cert: flooder.certPem,
      });
      const answers: ChannelDown[] = [];
      ws.on('message', (data) => answers.push(JSON.parse(String(data)) as ChannelDown));
      try {
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        for (let seq = 0; seq < 50; seq++)
          ws.send(JSON.stringify({ type: 'heartbeat', heartbeat: sampleHeartbeat(seq) }));
        const bySeq = () => answers.filter((a) => a.type === 'ack' || a.type === 'error');
        const deadline = Date.now() + 20_000;
        while (bySeq().length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        const acked = bySeq().filter((a) => a.type === 'ack');
        const throttled = bySeq().filter((a) => a.type === 'error');
        assert.equal(acked.length, 5);
        assert.equal(throttled.length, 45);
        for (const answer of throttled) {
          assert.ok(answer.type === 'error');
          assert.equal(answer.status, 429);
          assert.match(answer.detail, /faster than every 10 s/);
        }
        assert.equal(ws.readyState, WebSocket.OPEN, 'a throttle is an answer, not a disconnect');
      } finally {
        ws.close();
        flooder.agent.destroy();
      }
    });

    test('an agent on its interval is never throttled, and keeps a telemetry point per heartbeat', async () => {
      const steady = await enrollAgent(t, { name: 'steady-1' });
      const since = t.clock.now() - 1000;
      try {
        for (let seq = 0; seq < 100; seq++) {
          // As agents do: 0.9 to 1.1 intervals apart.
          t.clock.advance(INTERVAL_MS * (seq % 2 === 0 ? 0.9 : 1.1));
          const res = await steady.heartbeat(sampleHeartbeat(seq, t.clock));
          assert.equal(res.status, 202, `heartbeat ${seq}: ${res.body}`);
        }
      } finally {
        steady.agent.destroy();
      }
      assert.equal(await rawPoints(steady, since), 100);
    });
  });
}
