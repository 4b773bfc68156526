import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair } from '@muster/host';
import {
  decisionsAbout,
  dialects,
  enrollAgent,
  httpsJson,
  sampleHeartbeat,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';

for (const dialect of dialects()) {
  describe(`rotating a node onto a fresh key (${dialect})`, () => {
    let t: TestServer;
    const opened: HttpsAgent[] = [];
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      for (const a of opened) a.destroy();
      await t.close();
    });

    test('the next heartbeat answer asks for a new key; the same key is refused until then', async () => {
      const node = await enrollAgent(t, { name: 'rotate-1' });
      opened.push(node.agent);
      const before = await node.heartbeat();
      assert.equal(before.status, 202);
      assert.equal(before.json.rekey, undefined);

      const asked = await t.admin('POST', '/v1/nodes/rotate-1/rotate');
      assert.equal(asked.status, 202, asked.body);
      assert.equal(asked.json.cert.rotationRequestedAt, new Date(t.clock.now()).toISOString());
      const told = await node.heartbeat();
      assert.equal(told.status, 202);
      assert.equal(told.json.rekey, true);

      const renewUrl = `${t.server.agentUrl}/v1/agent/renew`;
      assertProblem(
        await httpsJson(renewUrl, {
          body: { csr: await createCsrPem(node.keys, node.name) },
          agent: node.agent,
        }),
        400,
        'rekey_required',
      );
      const fresh = await generateKeyPair();
      const renewed = await httpsJson(renewUrl, {
        body: { csr: await createCsrPem(fresh, node.name) },
        agent: node.agent,
      });
      assert.equal(renewed.status, 200, renewed.body);
      assert.ok(new X509Certificate(renewed.json.certificate).publicKey.equals(fresh.publicKey));
      const next = new HttpsAgent({
        keepAlive: true,
        key: await exportPrivateKeyPem(fresh.privateKey),
        cert: renewed.json.certificate,
        ca: node.caPem,
      });
      opened.push(next);
      const after = await httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, {
        body: sampleHeartbeat(5),
        agent: next,
      });
      assert.equal(after.status, 202);
      assert.equal(after.json.rekey, undefined);
      const shown = await t.admin('GET', '/v1/nodes/rotate-1');
      assert.equal(shown.json.cert.rotationRequestedAt, null);
      const kinds = (await decisionsAbout(t, `node:${node.nodeId}`)).map((d) => d.kind);
      assert.deepEqual(kinds, [
        'node.enrolled',
        'node.rotation_requested',
        'node.renewed',
        'node.certificate_activated',
      ]);
    });

    test('an unknown node is a 404; a decommissioned one a 409', async () => {
      assertProblem(await t.admin('POST', '/v1/nodes/no-such-node/rotate'), 404, 'not_found');
      const node = await enrollAgent(t);
      node.agent.destroy();
      assert.equal((await t.admin('DELETE', `/v1/nodes/${node.nodeId}`)).status, 204);
      assertProblem(await t.admin('POST', `/v1/nodes/${node.nodeId}/rotate`), 409, 'decommissioned');
    });

    test('the API shows the certificate serial, issuer and validity', async () => {
      const node = await enrollAgent(t, { name: 'cert-view' });
      node.agent.destroy();
      const cert = new X509Certificate(node.certPem);
      const shown = await t.admin('GET', '/v1/nodes/cert-view');
      assert.equal(shown.json.cert.serial, cert.serialNumber.toLowerCase());
      assert.equal(shown.json.cert.issuer, `CN=Muster fleet CA muster.local, O=Muster`);
      assert.equal(shown.json.cert.notBefore, new Date(cert.validFrom).toISOString());
      // The stored expiry keeps the milliseconds the certificate's own time format drops.
      assert.equal(Math.floor(Date.parse(shown.json.cert.notAfter) / 1000) * 1000, Date.parse(cert.validTo));
      assert.equal(shown.json.cert.pending, null);
      const listed = await t.admin('GET', '/v1/nodes');
      const item = listed.json.items.find((n: { name: string }) => n.name === 'cert-view');
      assert.equal(item.cert.issuer, shown.json.cert.issuer);
      assert.equal(item.cert.pem, undefined);
    });
  });
}
