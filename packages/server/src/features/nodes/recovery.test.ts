import assert from 'node:assert/strict';
import { randomUUID, X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { randomIds } from '../../clock.js';
import { CertificateAuthority } from '../../pki/ca.js';
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
import { CertificateRecovery } from './recovery.js';

const HOUR = 3_600_000;

/**
 * A restored server meets certificates it never saw: the renewals its agents got after the
 * backup, from the server it replaces (the same fleet CA). These are made here with the fleet
 * CA's key, as that server made them, at a chosen time.
 */
for (const dialect of dialects()) {
  describe(`a node certificate the store does not know (${dialect})`, () => {
    let t: TestServer;
    const opened: HttpsAgent[] = [];
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      for (const a of opened) a.destroy();
      await t.close();
    });

    /** A certificate for the node, issued `offsetMs` after (or before) the one the store holds. */
    const issued = (
      node: TestAgent,
      offsetMs: number,
      opts: { ca?: CertificateAuthority; nodeId?: string } = {},
    ) =>
      (opts.ca ?? t.server.identity.ca).issueNodeCertificate({
        spki: node.keys.publicKey.export({ type: 'spki', format: 'der' }),
        name: node.name,
        nodeId: opts.nodeId ?? node.nodeId,
        serial: randomIds.serial(),
        now: t.clock.now() + offsetMs,
        lifetimeMs: 24 * HOUR,
      }).pem;
    const holding = (node: TestAgent, certPem: string) => {
      const agent = new HttpsAgent({
        keepAlive: true,
        maxSockets: 1,
        key: node.keyPem,
        cert: certPem,
        ca: node.caPem,
      });
      opened.push(agent);
      return agent;
    };
    const heartbeat = (agent: HttpsAgent) =>
      httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, { body: sampleHeartbeat(0, t.clock), agent });
    const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase();
    const currentSerial = async (node: TestAgent) =>
      (await t.admin('GET', `/v1/nodes/${node.nodeId}`)).json.cert.serial as string;
    const recovered = async (node: TestAgent) =>
      (await decisionsAbout(t, `node:${node.nodeId}`)).filter((d) => d.kind === 'node.certificate_recovered');

    test('a newer one is adopted once, as a ledger decision; the one it replaces is refused from then on', async () => {
      const node = await enrollAgent(t);
      opened.push(node.agent);
      const renewed = issued(node, 60_000);
      // Two first uses at once (a channel and a heartbeat): both are let in, one adoption.
      const [a, b] = await Promise.all([
        heartbeat(holding(node, renewed)),
        heartbeat(holding(node, renewed)),
      ]);
      assert.equal(a.status, 202, a.body);
      assert.equal(b.status, 202, b.body);
      assert.equal(await currentSerial(node), serialOf(renewed));
      const [decision, ...more] = await recovered(node);
      assert.equal(more.length, 0, 'adopted once');
      assert.equal(decision!.actor, `node:${node.nodeId}`);
      assert.equal(decision!.data.serial, serialOf(renewed));
      assert.equal(decision!.data.previousSerial, serialOf(node.certPem));

      assertProblem(await node.heartbeat(), 401, 'identity_superseded');
      assert.equal((await heartbeat(holding(node, renewed))).status, 202);
      assert.equal((await recovered(node)).length, 1, 'a known certificate is no recovery');
    });

    test('an older one, or one as old, is refused: a stolen superseded certificate stays out', async () => {
      const node = await enrollAgent(t);
      opened.push(node.agent);
      for (const offset of [-60_000, 0]) {
        assertProblem(await heartbeat(holding(node, issued(node, offset))), 401, 'identity_revoked');
      }
      // After a renewal the store knows, a certificate between the two is older than the newest.
      const between = issued(node, 30_000);
      const newest = issued(node, 60_000);
      assert.equal((await heartbeat(holding(node, newest))).status, 202);
      assertProblem(await heartbeat(holding(node, between)), 401, 'identity_revoked');
      assert.equal(await currentSerial(node), serialOf(newest));
      assert.equal((await recovered(node)).length, 1);
    });

    test('never for a decommissioned node, nor for a node id the store does not hold', async () => {
      const node = await enrollAgent(t);
      node.agent.destroy();
      assert.equal((await t.admin('DELETE', `/v1/nodes/${node.nodeId}`)).status, 204);
      assertProblem(await heartbeat(holding(node, issued(node, 60_000))), 401, 'identity_revoked');
      assert.equal((await recovered(node)).length, 0);
      const shown = await t.admin('GET', `/v1/nodes/${node.nodeId}`);
      assert.equal(shown.json.status, 'decommissioned');
      assert.equal(shown.json.cert.serial, serialOf(node.certPem));

      const other = await enrollAgent(t);
      opened.push(other.agent);
      const stranger = randomUUID();
      assertProblem(
        await heartbeat(holding(other, issued(other, 60_000, { nodeId: stranger }))),
        401,
        'identity_revoked',
      );
      assert.equal((await t.admin('GET', `/v1/nodes/${stranger}`)).status, 404);
    });

    test('never from another CA, even one named like the fleet CA, nor once it has expired', async () => {
      const node = await enrollAgent(t);
      opened.push(node.agent);
      const ours = t.server.identity.ca;
      const { ca: foreign } = CertificateAuthority.create({
        now: t.clock.now(),
        lifetimeMs: 24 * HOUR,
        trustDomain: ours.trustDomain,
        serial: randomIds.serial(),
      });
      const forged = issued(node, 60_000, { ca: foreign });
      assertProblem(await heartbeat(holding(node, forged)), 401, 'no_identity');

      // Past the TLS handshake too, the recovery itself checks the signature and the time.
      const deps = {
        db: t.server.store.db,
        write: t.server.store.write,
        clock: t.clock,
        decisions: { record: () => Promise.reject(new Error('a refused certificate must record nothing')) },
        roots: { trusted: () => [ours] },
      };
      assert.equal(await new CertificateRecovery(deps).recover(new X509Certificate(forged)), undefined);
      const expiring = new X509Certificate(issued(node, 60_000));
      const expired = { now: () => Date.parse(expiring.validTo) };
      assert.equal(await new CertificateRecovery({ ...deps, clock: expired }).recover(expiring), undefined);
      const early = { now: () => Date.parse(expiring.validFrom) - 1000 };
      assert.equal(await new CertificateRecovery({ ...deps, clock: early }).recover(expiring), undefined);
      assert.equal(await currentSerial(node), serialOf(node.certPem));
      assert.equal((await recovered(node)).length, 0);
    });
  });
}
