import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, enrollAgent, startTestServer, type TestServer } from '../../testing/harness.js';
import { x509 } from '../../testing/x509.js';

for (const dialect of dialects()) {
  describe(`enrollment and heartbeats (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test('an agent enrolls, reports, and goes offline after three missed intervals', async () => {
      const agent = await enrollAgent(t, { name: 'web-1' });
      const cert = new x509.X509Certificate(agent.certPem);
      assert.equal(cert.subject, 'CN=web-1');

      const hb = await agent.heartbeat();
      assert.equal(hb.status, 202);
      assert.equal(hb.json.nodeId, agent.nodeId);

      const shown = await t.admin('GET', `/v1/nodes/${agent.nodeId}`);
      assert.equal(shown.status, 200);
      assert.equal(shown.json.status, 'ok');
      assert.equal(shown.json.latest.cpuPct, 12.5);

      t.clock.advance(31_000);
      const later = await t.admin('GET', '/v1/nodes/web-1');
      assert.equal(later.json.status, 'offline');
      assert.match(later.json.reasons[0], /^no heartbeat for 3\d s \(expected every 10 s\)$/);
      agent.agent.destroy();
    });
  });
}
