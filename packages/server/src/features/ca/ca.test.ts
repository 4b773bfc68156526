import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, enrollAgent, startTestServer, type TestServer } from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';

const DAY = 86_400_000;

for (const dialect of dialects()) {
  describe(`GET /v1/ca (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test('shows the fleet CA, its expiry, and the active nodes it issued', async () => {
      const a = await enrollAgent(t);
      const b = await enrollAgent(t);
      a.agent.destroy();
      b.agent.destroy();
      assert.equal((await t.admin('DELETE', `/v1/nodes/${b.nodeId}`)).status, 204);
      const res = await t.admin('GET', '/v1/ca');
      assert.equal(res.status, 200, res.body);
      const ca = t.server.identity.ca.certificate;
      assert.equal(res.json.ca.pin, t.server.identity.ca.pin);
      assert.equal(res.json.ca.serial, ca.serialNumber.toLowerCase());
      assert.equal(res.json.ca.subject, 'CN=Muster fleet CA muster.local, O=Muster');
      assert.equal(res.json.ca.notAfter, new Date(ca.validTo).toISOString());
      assert.deepEqual(res.json.nodes, { active: 1, onThisCa: 1, onOtherCa: 0 });
      assert.deepEqual(res.json.warnings, []);
    });

    test('warns when a third of the CA lifetime (at least a year) is left, and says when it has expired', async () => {
      const ca = t.server.identity.ca.certificate;
      const notAfter = Date.parse(ca.validTo);
      const third = (notAfter - Date.parse(ca.validFrom)) / 3;
      const now = t.clock.now();
      try {
        t.clock.set(notAfter - third - DAY);
        assert.deepEqual((await t.admin('GET', '/v1/ca')).json.warnings, []);
        t.clock.set(notAfter - 300 * DAY);
        assert.deepEqual((await t.admin('GET', '/v1/ca')).json.warnings, [
          'the fleet CA expires in 300 d: plan its rotation now',
        ]);
        t.clock.set(notAfter + 2 * DAY);
        assert.deepEqual((await t.admin('GET', '/v1/ca')).json.warnings, [
          'the fleet CA expired 2 d ago: no node can renew',
        ]);
      } finally {
        t.clock.set(now);
      }
    });

    test('needs the admin token', async () => {
      const res = await t.server.app.admin.inject({ method: 'GET', url: '/v1/ca' });
      assertProblem(
        {
          status: res.statusCode,
          body: res.body,
          json: JSON.parse(res.body),
          headers: res.headers as Record<string, string>,
        },
        401,
      );
    });
  });
}
