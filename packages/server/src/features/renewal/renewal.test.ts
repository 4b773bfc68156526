import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair } from '@muster/host';
import { randomIds } from '../../clock.js';
import {
  decisionsAbout,
  dialects,
  enrollAgent,
  type HttpsResult,
  httpsJson,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';
import { testCsr, testKeys } from '../../testing/pki.js';
import { assertProblem } from '../../testing/problems.js';
import { x509 } from '../../testing/x509.js';

/** A keep-alive client holding one certificate, as an agent does. */
function holding(keyPem: string, certPem: string, caPem: string): HttpsAgent {
  return new HttpsAgent({ keepAlive: true, maxSockets: 1, key: keyPem, cert: certPem, ca: caPem });
}

async function csrWithBrokenSignature(name: string): Promise<string> {
  const der = Buffer.from(x509.PemConverter.decode(await testCsr({ name: `CN=${name}` }))[0]!);
  der[der.length - 1]! ^= 0x01;
  return x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
}

for (const dialect of dialects()) {
  describe(`renewal (${dialect})`, () => {
    let t: TestServer;
    const opened: HttpsAgent[] = [];
    before(async () => {
      t = await startTestServer(dialect, { settings: { 'cert-lifetime': '2h' } });
    });
    after(async () => {
      for (const a of opened) a.destroy();
      await t.close();
    });

    const renew = (agent: HttpsAgent, csr: string): Promise<HttpsResult> =>
      httpsJson(`${t.server.agentUrl}/v1/agent/renew`, { body: { csr }, agent });
    const heartbeat = (agent: HttpsAgent): Promise<HttpsResult> =>
      httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, { body: sampleHeartbeat(1), agent });
    async function enrolled(name?: string): Promise<TestAgent> {
      const a = await enrollAgent(t, name ? { name } : {});
      opened.push(a.agent);
      return a;
    }
    async function decisions(
      nodeId: string,
    ): Promise<Array<{ kind: string; data: Record<string, unknown> }>> {
      return (await decisionsAbout(t, `node:${nodeId}`)).map((d) => ({ kind: d.kind, data: d.data }));
    }

    test('same key: a new certificate that becomes current at its first use; the old one is then refused', async () => {
      const node = await enrolled('renew-1');
      assert.equal((await node.heartbeat()).status, 202);
      // Certificates are checked at the handshake against the real time too, so the clock
      // moves only within the five minutes of back-dating.
      t.clock.advance(4 * 60_000);
      const res = await renew(node.agent, await createCsrPem(node.keys, node.name));
      assert.equal(res.status, 200, res.body);
      const cert = new X509Certificate(res.json.certificate);
      const old = new X509Certificate(node.certPem);
      assert.notEqual(cert.serialNumber, old.serialNumber);
      assert.equal(cert.subject, 'CN=renew-1');
      assert.equal(cert.subjectAltName, old.subjectAltName);
      assert.ok(cert.publicKey.equals(old.publicKey), 'same key by default');
      assert.equal(Date.parse(res.json.notAfter), t.clock.now() + 2 * 3_600_000);
      assert.equal(res.json.caBundle, t.server.identity.ca.pem);

      // Until the new certificate is used, the node is still on the old one, which still works.
      let shown = await t.admin('GET', `/v1/nodes/${node.nodeId}`);
      assert.equal(shown.json.cert.serial, old.serialNumber.toLowerCase());
      assert.equal(shown.json.cert.pending.serial, cert.serialNumber.toLowerCase());
      assert.equal((await node.heartbeat()).status, 202);

      const renewed = holding(node.keyPem, res.json.certificate, node.caPem);
      opened.push(renewed);
      assert.equal((await heartbeat(renewed)).status, 202);
      shown = await t.admin('GET', `/v1/nodes/${node.nodeId}`);
      assert.equal(shown.json.cert.serial, cert.serialNumber.toLowerCase());
      assert.equal(shown.json.cert.pending, null);
      assert.equal(shown.json.cert.notAfter, res.json.notAfter);

      // The old certificate, even on the connection it already holds, is refused from now on.
      assertProblem(await node.heartbeat(), 401, 'identity_superseded');
      assertProblem(
        await renew(node.agent, await createCsrPem(node.keys, node.name)),
        401,
        'identity_superseded',
      );
      assert.equal((await heartbeat(renewed)).status, 202);

      const kinds = (await decisions(node.nodeId)).map((d) => d.kind);
      assert.deepEqual(kinds, [
        'node.enrolled',
        'node.renewed',
        'node.certificate_activated',
        'security.superseded_certificate_used',
      ]);
      const [, renewal] = await decisions(node.nodeId);
      assert.equal(renewal!.data.rekeyed, false);
      assert.equal(renewal!.data.serial, cert.serialNumber.toLowerCase());
    });

    test('a fresh key is allowed, and only the CSR key is used', async () => {
      const node = await enrolled();
      const fresh = await generateKeyPair();
      const res = await renew(node.agent, await createCsrPem(fresh, node.name));
      assert.equal(res.status, 200, res.body);
      const cert = new X509Certificate(res.json.certificate);
      assert.ok(cert.publicKey.equals(fresh.publicKey));
      const renewed = holding(await exportPrivateKeyPem(fresh.privateKey), res.json.certificate, node.caPem);
      opened.push(renewed);
      assert.equal((await heartbeat(renewed)).status, 202);
      const renewal = (await decisions(node.nodeId)).find((d) => d.kind === 'node.renewed');
      assert.equal(renewal?.data.rekeyed, true);
    });

    test('renewing twice before use: the first renewal can never become current', async () => {
      const node = await enrolled();
      const first = await renew(node.agent, await createCsrPem(node.keys, node.name));
      const second = await renew(node.agent, await createCsrPem(node.keys, node.name));
      assert.equal(first.status, 200);
      assert.equal(second.status, 200);
      const stale = holding(node.keyPem, first.json.certificate, node.caPem);
      opened.push(stale);
      assertProblem(await heartbeat(stale), 401, 'identity_revoked');
      const current = holding(node.keyPem, second.json.certificate, node.caPem);
      opened.push(current);
      assert.equal((await heartbeat(current)).status, 202);
    });

    test('a node renewing more than its rate allows gets 429 with Retry-After, nothing issued', async () => {
      const node = await enrolled();
      const csr = await createCsrPem(node.keys, node.name);
      for (let i = 0; i < 6; i++) assert.equal((await renew(node.agent, csr)).status, 200);
      const limited = await renew(node.agent, csr);
      assertProblem(limited, 429, 'rate_limited');
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      assert.equal((await decisions(node.nodeId)).filter((d) => d.kind === 'node.renewed').length, 6);
      // Another node is not held back by this one.
      const other = await enrolled();
      assert.equal((await renew(other.agent, await createCsrPem(other.keys, other.name))).status, 200);
    });

    test('without a client certificate: 401', async () => {
      const res = await httpsJson(`${t.server.agentUrl}/v1/agent/renew`, {
        body: { csr: await testCsr() },
        ca: t.server.identity.ca.pem,
      });
      assertProblem(res, 401, 'no_identity');
    });

    test('with a revoked certificate (decommissioned node): 401, nothing issued', async () => {
      const node = await enrolled();
      assert.equal((await t.admin('DELETE', `/v1/nodes/${node.nodeId}`)).status, 204);
      assertProblem(
        await renew(node.agent, await createCsrPem(node.keys, node.name)),
        401,
        'identity_revoked',
      );
      assert.ok(!(await decisions(node.nodeId)).some((d) => d.kind === 'node.renewed'));
    });

    test('with an expired certificate: 401, nothing issued', async () => {
      const node = await enrolled();
      t.clock.advance(2 * 3_600_000 + 1000);
      try {
        assertProblem(
          await renew(node.agent, await createCsrPem(node.keys, node.name)),
          401,
          'identity_expired',
        );
      } finally {
        t.clock.advance(-(2 * 3_600_000 + 1000));
      }
      assert.ok(!(await decisions(node.nodeId)).some((d) => d.kind === 'node.renewed'));
    });

    test('with a certificate the TLS handshake finds expired: 401, nothing issued', async () => {
      const node = await enrolled();
      const expired = t.server.identity.ca.issueNodeCertificate({
        spki: node.keys.publicKey.export({ type: 'spki', format: 'der' }),
        name: node.name,
        nodeId: node.nodeId,
        serial: randomIds.serial(),
        now: Date.now() - 2 * 3_600_000,
        lifetimeMs: 60_000,
      });
      const holder = holding(node.keyPem, expired.pem, node.caPem);
      opened.push(holder);
      assertProblem(await renew(holder, await createCsrPem(node.keys, node.name)), 401, 'identity_expired');
      assert.ok(!(await decisions(node.nodeId)).some((d) => d.kind === 'node.renewed'));
    });

    test('a CSR for another name, with several names, or none: 400, nothing issued', async () => {
      const node = await enrolled('renew-name');
      const other = await enrolled('renew-other');
      for (const name of ['CN=renew-other', 'CN=renew-name+CN=renew-other', 'O=Muster']) {
        const res = await renew(node.agent, await testCsr({ name, keys: await testKeys() }));
        assertProblem(res, 400, 'csr_name_mismatch');
      }
      assertProblem(
        await renew(node.agent, await createCsrPem(node.keys, other.name)),
        400,
        'csr_name_mismatch',
      );
      const shown = await t.admin('GET', `/v1/nodes/${node.nodeId}`);
      assert.equal(shown.json.cert.pending, null);
      assert.ok(!(await decisions(node.nodeId)).some((d) => d.kind === 'node.renewed'));
    });

    test('a CSR whose signature does not verify, or garbage: 400, nothing issued', async () => {
      const node = await enrolled();
      assertProblem(await renew(node.agent, await csrWithBrokenSignature(node.name)), 400, 'bad_csr');
      for (const csr of [
        'hello',
        '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      ]) {
        assertProblem(await renew(node.agent, csr), 400, 'bad_csr');
      }
      assertProblem(
        await httpsJson(`${t.server.agentUrl}/v1/agent/renew`, {
          body: { csr: 'x', extra: 1 },
          agent: node.agent,
        }),
        400,
      );
      assert.ok(!(await decisions(node.nodeId)).some((d) => d.kind === 'node.renewed'));
    });
  });
}
