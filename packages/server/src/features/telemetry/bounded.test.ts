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

for (const dialect of dialects()) {
  describe(`telemetry stays bounded per node whatever it sends (${dialect})`, () => {
    let t: TestServer;
    let agent: TestAgent;
    before(async () => {
      // The harness lifts the heartbeat throttle: this is telemetry's own bound.
      t = await startTestServer(dialect);
      agent = await enrollAgent(t, { name: 'bounded-1' });
    });
    after(async () => {
      agent.agent.destroy();
      await t.close();
    });

    test('200 heartbeats at one instant keep three raw points; half an interval later, one more', async () => {
      const since = new Date(t.clock.now() - 1000).toISOString();
      const points = async () => {
        const until = new Date(t.clock.now() + 1000).toISOString();
        const res = await t.admin(
          'GET',
          `/v1/nodes/${agent.nodeId}/telemetry?since=${since}&until=${until}&step=raw`,
        );
        assert.equal(res.status, 200, res.body);
        return (res.json.points as unknown[]).length;
      };
      for (let seq = 0; seq < 200; seq++)
        assert.equal((await agent.heartbeat(sampleHeartbeat(seq, t.clock))).status, 202);
      assert.equal(await points(), 3);
      const latest = await t.admin('GET', `/v1/nodes/${agent.nodeId}`);
      assert.equal(latest.json.latest.seq, 199, 'the latest state is the newest heartbeat all the same');
      t.clock.advance(5_000); // half of the 10 s interval
      assert.equal((await agent.heartbeat(sampleHeartbeat(200, t.clock))).status, 202);
      assert.equal((await agent.heartbeat(sampleHeartbeat(201, t.clock))).status, 202);
      assert.equal(await points(), 4);
    });
  });
}
