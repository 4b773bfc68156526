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
import { StatusWatcher } from '../nodes/status-watch.js';

const nodeCounts = (text: string) =>
  Object.fromEntries(
    [...text.matchAll(/^muster_nodes\{status="(\w+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]),
  );

const full = (freeBytes: number) => ({
  ...sampleHeartbeat(100),
  disks: [{ mount: '/', totalBytes: 100, freeBytes }],
});

describe('/metrics needs a credential, unless served on its own listener', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('sqlite', { settings: { 'metrics-listen': '127.0.0.1:0' } });
  });
  after(async () => {
    await t.close();
  });

  test('without a credential the admin plane answers 401; with the admin token, the metrics', async () => {
    const bare = await fetch(`${t.server.adminUrl}/metrics`);
    assert.equal(bare.status, 401);
    assert.match(bare.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const wrong = await fetch(`${t.server.adminUrl}/metrics`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    const scraped = await fetch(`${t.server.adminUrl}/metrics`, {
      headers: { authorization: `Bearer ${t.server.identity.adminToken}` },
    });
    assert.equal(scraped.status, 200);
    assert.match(await scraped.text(), /^muster_nodes\{status="ok"\} \d+$/m);
  });

  test('--metrics-listen serves /metrics alone, without a credential', async () => {
    assert.ok(t.server.metricsUrl);
    const scraped = await fetch(`${t.server.metricsUrl}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(scraped.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await scraped.text(), /^muster_channels_held \d+$/m);
    assert.equal((await fetch(`${t.server.metricsUrl}/v1/nodes`)).status, 404);
  });
});

for (const dialect of dialects()) {
  describe(`node counts by status follow the status watcher, not a pass over the fleet (${dialect})`, () => {
    let t: TestServer;
    const agents: TestAgent[] = [];
    before(async () => {
      t = await startTestServer(dialect);
      for (const name of ['count-a', 'count-b', 'count-c']) agents.push(await enrollAgent(t, { name }));
    });
    after(async () => {
      for (const a of agents) a.agent.destroy();
      await t.close();
    });
    const scrape = async () => nodeCounts((await t.admin('GET', '/metrics')).body);
    const until = async (what: string, probe: (c: Record<string, number>) => boolean) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const counts = await scrape();
        if (probe(counts)) return counts;
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}: ${JSON.stringify(counts)}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };

    test('a heartbeat that changes a status, and a decommission, show in the next scrapes', async () => {
      const [a, b, c] = agents;
      assert.equal((await a!.heartbeat(sampleHeartbeat(1))).status, 202);
      assert.equal((await b!.heartbeat(sampleHeartbeat(1))).status, 202);
      await until('two ok, one waiting for its first heartbeat', (n) => n.ok === 2 && n.attention === 1);
      assert.equal((await b!.heartbeat(full(1))).status, 202); // 99 % full: critical
      await until('the full disk to count', (n) => n.ok === 1 && n.critical === 1 && n.attention === 1);
      assert.equal((await t.admin('DELETE', `/v1/nodes/${c!.nodeId}`)).status, 204);
      const counts = await until('the decommission to count', (n) => n.decommissioned === 1);
      assert.deepEqual(counts, { ok: 1, attention: 0, critical: 1, offline: 0, decommissioned: 1 });
    });

    test('a scrape lists no nodes: it reads the counts the watcher keeps', async () => {
      await scrape();
      const nodes = t.server.app.nodes;
      const list = nodes.list.bind(nodes);
      let listed = 0;
      nodes.list = (query) => {
        listed++;
        return list(query);
      };
      try {
        for (let i = 0; i < 5; i++) assert.equal((await scrape()).ok, 1);
      } finally {
        nodes.list = list;
      }
      assert.equal(listed, 0);
    });
  });

  describe(`the sweep between full passes assesses only nodes whose time came (${dialect})`, () => {
    let t: TestServer;
    const agents: TestAgent[] = [];
    before(async () => {
      t = await startTestServer(dialect);
      for (const name of ['due-a', 'due-b', 'due-c']) agents.push(await enrollAgent(t, { name }));
    });
    after(async () => {
      for (const a of agents) a.agent.destroy();
      await t.close();
    });

    test('heard-from nodes move on, silent ones are assessed and go offline', async () => {
      // A watcher of the test's own, on the server's store, so no timer of the server's sweeps.
      const watcher = new StatusWatcher({
        db: t.server.store.db,
        write: t.server.store.write,
        nodes: t.server.app.nodes,
        events: t.server.app.events,
        clock: t.clock,
        debounceMs: 0,
        heartbeatIntervalMs: () => 10_000,
      });
      const [a, b] = agents;
      assert.equal((await a!.heartbeat(sampleHeartbeat(1, t.clock))).status, 202);
      assert.equal((await b!.heartbeat(sampleHeartbeat(1, t.clock))).status, 202);
      await watcher.sweep();
      assert.deepEqual(await watcher.counts(), {
        ok: 2,
        attention: 1,
        critical: 0,
        offline: 0,
        decommissioned: 0,
      });
      t.clock.advance(5_000);
      assert.equal(await watcher.sweepDue(), 0, 'nothing came due in 5 s');
      t.clock.advance(30_000); // past three intervals for all three
      assert.equal((await a!.heartbeat(sampleHeartbeat(2, t.clock))).status, 202);
      watcher.heard([[a!.nodeId, t.clock.now()]]);
      assert.equal(await watcher.sweepDue(), 2, 'the two silent nodes, not the one heard from');
      assert.deepEqual(await watcher.counts(), {
        ok: 1,
        attention: 0,
        critical: 0,
        offline: 2,
        decommissioned: 0,
      });
      t.clock.advance(5_000);
      assert.equal(await watcher.sweepDue(), 0, 'offline nodes wait for a heartbeat, not the clock');
    });
  });
}
