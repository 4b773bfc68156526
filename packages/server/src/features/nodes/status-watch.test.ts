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
  describe(`node status changes become events, debounced (${dialect})`, () => {
    let t: TestServer;
    let agent: TestAgent;
    before(async () => {
      t = await startTestServer(dialect, { settings: { 'status-debounce': '15s' } });
      agent = await enrollAgent(t, { name: 'watch-1' });
    });
    after(async () => {
      agent.agent.destroy();
      await t.close();
    });

    const changes = async () =>
      (await t.admin('GET', `/v1/events?kind=node.status_changed&node=${agent.nodeId}&limit=100`)).json
        .items as Array<{
        severity: string;
        data: { from: string; to: string; reasons: string[] };
      }>;
    const sweep = () => t.server.app.statusWatcher.sweep();

    test('a node going offline is announced once, after the debounce, with its reason', async () => {
      assert.equal((await agent.heartbeat(sampleHeartbeat(1))).status, 202);
      await sweep(); // the first status (ok) is recorded quietly
      assert.deepEqual(await changes(), []);
      t.clock.advance(40_000); // three intervals missed: offline
      await sweep();
      assert.deepEqual(await changes(), [], 'not yet: the new status must hold for 15 s');
      t.clock.advance(16_000);
      await sweep();
      await sweep();
      const told = await changes();
      assert.equal(told.length, 1);
      assert.equal(told[0]!.severity, 'critical');
      assert.deepEqual([told[0]!.data.from, told[0]!.data.to], ['ok', 'offline']);
      assert.match(told[0]!.data.reasons[0]!, /^no heartbeat for \d+ s/);
    });

    test('a flapping agent floods nobody', async () => {
      assert.equal((await agent.heartbeat(sampleHeartbeat(2))).status, 202); // back: ok (pending)
      const before = (await changes()).length;
      for (let i = 0; i < 10; i++) {
        const full = {
          ...sampleHeartbeat(3 + i),
          disks: [{ mount: '/', totalBytes: 100, freeBytes: i % 2 ? 50 : 5 }],
        };
        assert.equal((await agent.heartbeat(full)).status, 202);
        await sweep();
        t.clock.advance(5_000);
      }
      assert.equal((await changes()).length - before, 0, 'ten flips in 50 s, no status held 15 s, no event');
      const steady = { ...sampleHeartbeat(20), disks: [{ mount: '/', totalBytes: 100, freeBytes: 50 }] };
      assert.equal((await agent.heartbeat(steady)).status, 202);
      await sweep();
      t.clock.advance(16_000);
      assert.equal((await agent.heartbeat({ ...steady, seq: 21 })).status, 202);
      await sweep();
      const told = await changes();
      assert.equal(told.length - before, 1);
      assert.ok(told.some((e) => e.data.from === 'offline' && e.data.to === 'ok' && e.severity === 'info'));
    });
  });
}
