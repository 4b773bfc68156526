import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  dialects,
  enrollAgent,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';
import { sweep } from './store.js';

for (const dialect of dialects()) {
  describe(`telemetry history (${dialect})`, () => {
    let t: TestServer;
    let agent: TestAgent;
    let start: number;
    before(async () => {
      t = await startTestServer(dialect);
      agent = await enrollAgent(t, { name: 'tele-1' });
      // Two minutes of heartbeats every 10 s; CPU climbs 0, 5, 10, … 55.
      // From the top of an hour, so the two minutes fall in one hourly bucket whatever the time.
      start = t.clock.now() - (t.clock.now() % 3_600_000);
      t.clock.set(start);
      for (let i = 0; i < 12; i++) {
        const res = await agent.heartbeat({ ...sampleHeartbeat(i), cpuPct: i * 5 }, i);
        assert.equal(res.status, 202);
        t.clock.advance(10_000);
      }
    });
    after(async () => {
      agent.agent.destroy();
      await t.close();
    });

    const series = (query: string) => t.admin('GET', `/v1/nodes/${agent.nodeId}/telemetry?${query}`);
    const iso = (ms: number) => new Date(ms).toISOString();

    test('raw points, every heartbeat, in order', async () => {
      const res = await series(`since=${iso(start)}&until=${iso(start + 120_000)}&step=raw`);
      assert.equal(res.status, 200);
      assert.equal(res.json.step, 'raw');
      assert.deepEqual(
        res.json.points.map((p: { cpuPct: number }) => p.cpuPct),
        [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55],
      );
      assert.equal(res.json.points[0].memUsedPct, 25);
      assert.equal(res.json.points[0].diskUsedPct, 40);
    });

    test('per-minute rollups average and keep the peak', async () => {
      const res = await series(`since=${iso(start)}&until=${iso(start + 120_000)}&step=1m`);
      assert.deepEqual(
        res.json.points.map((p: { cpuPct: number; cpuMaxPct: number; samples: number }) => [
          p.cpuPct,
          p.cpuMaxPct,
          p.samples,
        ]),
        [
          [12.5, 25, 6],
          [42.5, 55, 6],
        ],
      );
      const hour = await series(`since=${iso(start)}&until=${iso(start + 120_000)}&step=1h`);
      assert.equal(hour.json.points.length, 1);
      assert.equal(hour.json.points[0].cpuPct, 27.5);
      assert.equal(hour.json.points[0].samples, 12);
    });

    test('without a step, the range picks it; past its retention, raw history is gone but rollups stay', async () => {
      assert.equal((await series('')).json.step, 'raw');
      assert.equal(
        (await series(`since=${iso(start - 2 * 86_400_000)}&until=${iso(start)}`)).json.step,
        '1m',
      );
      assert.equal(
        (await series(`since=${iso(start - 30 * 86_400_000)}&until=${iso(start)}`)).json.step,
        '1h',
      );
      await sweep(t.server.store.db, start + 2 * 3_600_000, {
        raw: 3_600_000,
        minute: 7 * 86_400_000,
        hour: 90 * 86_400_000,
      });
      const raw = await series(`since=${iso(start)}&until=${iso(start + 120_000)}&step=raw`);
      assert.equal(raw.json.points.length, 0);
      const minute = await series(`since=${iso(start)}&until=${iso(start + 120_000)}&step=1m`);
      assert.equal(minute.json.points.length, 2);
    });

    test('bad ranges, steps and nodes are refused plainly', async () => {
      assert.equal((await series(`since=${iso(start + 1000)}&until=${iso(start)}`)).status, 400);
      assert.equal((await series('step=5s')).status, 400);
      assert.equal((await series("since=';DROP TABLE nodes")).status, 400);
      assert.equal((await series(`since=${iso(start - 500 * 86_400_000)}&until=${iso(start)}`)).status, 400);
      assert.equal((await t.admin('GET', '/v1/nodes/no-such-node/telemetry')).status, 404);
    });
  });
}
