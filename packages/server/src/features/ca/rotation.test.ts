import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { createCsrPem } from '@muster/host';
import type { CaStatus } from '@muster/proto';
import {
  decisionsAbout,
  dialects,
  enrollAgent,
  httpsJson,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';
import { issuedBy, presentedCertificate as presented } from '../../testing/tls.js';

/**
 * Renews a test agent as the real agent does and makes the new certificate current by using it.
 * The answer's `agent` holds the new identity (its `heartbeat` still uses the old one).
 */
async function renewOnto(t: TestServer, node: TestAgent, caBundle: string): Promise<TestAgent> {
  const res = await httpsJson(`${t.server.agentUrl}/v1/agent/renew`, {
    body: { csr: await createCsrPem(node.keys, node.name) },
    agent: node.agent,
  });
  assert.equal(res.status, 200, res.body);
  const agent = new HttpsAgent({
    keepAlive: true,
    maxSockets: 1,
    key: node.keyPem,
    cert: res.json.certificate,
    ca: caBundle,
  });
  assert.equal(
    (await httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, { body: sampleHeartbeat(9), agent })).status,
    202,
  );
  node.agent.destroy();
  return { ...node, agent, certPem: res.json.certificate, caPem: caBundle };
}

for (const dialect of dialects()) {
  describe(`CA rotation (${dialect})`, () => {
    let t: TestServer;
    const held: HttpsAgent[] = [];
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      for (const agent of held) agent.destroy();
      await t.close();
    });
    const status = async (): Promise<CaStatus> => (await t.admin('GET', '/v1/ca')).json;

    test('rotate, renew every node onto the new root, finish: the server then presents the new root alone', async () => {
      const oldCa = t.server.identity.ca;
      let node = await enrollAgent(t, { name: 'rot-a' });
      assert.equal((await node.heartbeat()).json.renewWithinSec, undefined, 'no rotation, no hurry');

      const started = await t.admin('POST', '/v1/ca/rotate');
      assert.equal(started.status, 201, started.body);
      const newCa = t.server.identity.nextCa!;
      assert.equal(started.json.ca.pin, newCa.pin);
      assert.notEqual(newCa.pin, oldCa.pin);
      assert.equal(started.json.rotation.retiring.pin, oldCa.pin);
      assert.equal(started.json.rotation.nodesOnRetiring, 1);
      assert.match(started.json.ca.subject, /^CN=Muster fleet CA muster\.local \d{4}-\d\d-\d\d, O=Muster$/);

      // A node on the old root is told to renew within six heartbeat intervals.
      assert.equal((await node.heartbeat()).json.renewWithinSec, 60);
      // Until the finish, the server keeps a certificate agents on the old trust can verify,
      // and join lines keep the old pin.
      assert.ok(issuedBy((await presented(t)).toString(), oldCa.pem));
      const token = await t.admin('POST', '/v1/tokens', {});
      assert.match(token.json.agentCommand, new RegExp(`--ca-pin ${oldCa.pin}`));

      // A node that enrolls now gets its certificate from the new root and both roots to trust.
      const fresh = await httpsJson(`${t.server.agentUrl}/v1/enroll`, {
        body: {
          token: token.json.secret,
          csr: await createCsrPem(node.keys, 'rot-b'),
          name: 'rot-b',
          facts: sampleFacts(),
        },
        ca: oldCa.pem,
      });
      assert.equal(fresh.status, 201, fresh.body);
      assert.ok(issuedBy(fresh.json.certificate, newCa.pem));
      assert.equal(fresh.json.caBundle, `${oldCa.pem.trim()}\n${newCa.pem.trim()}\n`);
      assert.equal(fresh.json.trust.caPin, oldCa.pin, 'the pin the join line carried');
      const b = new HttpsAgent({
        keepAlive: true,
        key: node.keyPem,
        cert: fresh.json.certificate,
        ca: oldCa.pem,
      });
      held.push(b);
      const hb = await httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, {
        body: sampleHeartbeat(1),
        agent: b,
      });
      assert.equal(hb.status, 202, 'a client certificate from the new root is accepted');
      assert.equal(hb.json.renewWithinSec, undefined);

      // Finish is refused while rot-a is still on the old root, and says how many are.
      const refused = assertProblem(await t.admin('POST', '/v1/ca/finish', {}), 409, 'nodes_on_old_root');
      assert.match(refused.detail, /^1 active node is still on the old root/);

      node = await renewOnto(t, node, fresh.json.caBundle);
      held.push(node.agent);
      assert.ok(issuedBy(node.certPem, newCa.pem));
      assert.equal((await status()).rotation?.nodesOnRetiring, 0);

      const finished = await t.admin('POST', '/v1/ca/finish', {});
      assert.equal(finished.status, 200, finished.body);
      assert.equal(finished.json.rotation, null);
      assert.equal(finished.json.ca.pin, newCa.pin);
      assert.deepEqual(finished.json.nodes, { active: 2, onThisCa: 2, onOtherCa: 0 });
      assert.equal(t.server.identity.ca, newCa);
      assert.ok(issuedBy((await presented(t)).toString(), newCa.pem), 'the server presents the new root');
      assert.equal(await readFile(t.server.identity.paths.caCert, 'utf8'), newCa.pem);
      assert.match((await t.admin('POST', '/v1/tokens', {})).json.agentCommand, new RegExp(newCa.pin));
      const beat = await httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, {
        body: sampleHeartbeat(10),
        agent: node.agent,
      });
      assert.equal(beat.status, 202, 'a renewed agent keeps working');
      const renewed = await httpsJson(`${t.server.agentUrl}/v1/agent/renew`, {
        body: { csr: await createCsrPem(node.keys, node.name) },
        agent: node.agent,
      });
      assert.equal(renewed.json.caBundle, newCa.pem, 'after the finish agents are given the new root alone');

      const kinds = (await decisionsAbout(t, 'ca:fleet')).map((d) => [d.kind, d.data.forced]);
      assert.deepEqual(kinds, [
        ['ca.rotation_started', undefined],
        ['ca.rotation_finished', false],
      ]);
    });

    test('a second rotate before the finish, and a finish without a rotation, are refused', async () => {
      assertProblem(await t.admin('POST', '/v1/ca/finish', {}), 409, 'no_rotation');
      assert.equal((await t.admin('POST', '/v1/ca/rotate')).status, 201);
      const again = assertProblem(await t.admin('POST', '/v1/ca/rotate'), 409, 'rotation_in_progress');
      assert.match(again.detail, /already in progress .*muster ca finish/);
      assert.equal((await t.admin('POST', '/v1/ca/finish', { force: true })).status, 200);
    });

    test('--force retires the old root with nodes on it: their certificates get 401, even on open connections', async () => {
      const stranded = await enrollAgent(t, { name: 'rot-stranded' });
      held.push(stranded.agent);
      assert.equal((await stranded.heartbeat()).status, 202);
      assert.equal((await t.admin('POST', '/v1/ca/rotate')).status, 201);
      assert.equal((await stranded.heartbeat()).status, 202, 'still trusted during the overlap');
      const forced = await t.admin('POST', '/v1/ca/finish', { force: true });
      assert.equal(forced.status, 200, forced.body);
      // Its kept-alive connection was accepted under the old root; the next request is refused.
      assertProblem(await stranded.heartbeat(), 401, 'identity_retired_root');
      // So is a new connection, from a client that trusts the new root.
      const bundle = `${stranded.caPem.trim()}\n${t.server.identity.ca.pem.trim()}\n`;
      const fresh = new HttpsAgent({ key: stranded.keyPem, cert: stranded.certPem, ca: bundle });
      held.push(fresh);
      const res = await httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, {
        body: sampleHeartbeat(3),
        agent: fresh,
      });
      assertProblem(res, 401);
      const decisions = await decisionsAbout(t, 'ca:fleet');
      assert.deepEqual(decisions.at(-1)?.data.forced, true);
      assert.equal(decisions.at(-1)?.data.nodesOnRetired, 1);
      // The two nodes the forced finish before this test stranded are counted too.
      assert.match(
        (await status()).warnings.join('\n'),
        /^3 active nodes hold certificates from a retired root/,
      );
    });

    test('the rotation routes need the admin token', async () => {
      for (const url of ['/v1/ca/rotate', '/v1/ca/finish']) {
        const res = await t.server.app.admin.inject({ method: 'POST', url, payload: {} });
        assert.equal(res.statusCode, 401);
      }
    });
  });
}

function sampleFacts() {
  return {
    hostname: 'rot-b',
    os: 'linux',
    arch: 'x64',
    kernel: '6.1.0',
    cpus: 2,
    memoryBytes: 1024,
    agentVersion: '0.0.0',
  };
}
