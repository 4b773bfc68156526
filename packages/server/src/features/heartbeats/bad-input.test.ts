import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  dialects,
  enrollAgent,
  httpsJson,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';
import { ECDSA_SHA256, privateKeyPem, testKeys } from '../../testing/pki.js';
import { assertProblem } from '../../testing/problems.js';
import { x509 } from '../../testing/x509.js';

/**
 * A client certificate from a CA the fleet does not trust, shaped exactly like a node's:
 * same CN, same SPIFFE SAN, same serial. With `sameSubject`, the rogue CA also copies the
 * fleet CA's subject, so only the signature tells them apart.
 */
async function rogueIdentity(t: TestServer, victim: TestAgent, sameSubject: boolean) {
  const fleetCa = new x509.X509Certificate(t.server.identity.ca.pem);
  const caKeys = await testKeys();
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: fleetCa.serialNumber,
    // The fleet CA's subject as it is encoded, byte for byte.
    name: sameSubject ? fleetCa.subjectName : 'CN=Rogue CA',
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 86_400_000),
    keys: caKeys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const sameBytes = Buffer.from(ca.subjectName.toArrayBuffer()).equals(
    Buffer.from(fleetCa.subjectName.toArrayBuffer()),
  );
  assert.equal(sameBytes, sameSubject);
  const real = new x509.X509Certificate(victim.certPem);
  const keys = await testKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: real.serialNumber,
    subject: real.subject,
    issuer: ca.subjectName,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 86_400_000),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      real.getExtension(x509.SubjectAlternativeNameExtension)!,
    ],
  });
  return {
    key: await privateKeyPem(keys),
    cert: `${cert.toString('pem')}\n${ca.toString('pem')}\n`,
  };
}

for (const dialect of dialects()) {
  describe(`heartbeats refuse bad input and foreign identities (${dialect})`, () => {
    let t: TestServer;
    let agent: TestAgent;
    before(async () => {
      t = await startTestServer(dialect);
      agent = await enrollAgent(t, { name: 'hb-1' });
      assert.equal((await agent.heartbeat(sampleHeartbeat(1))).status, 202);
    });
    after(async () => {
      agent.agent.destroy();
      await t.close();
    });

    /** What an operator sees of the node: its latest report and when it was seen. */
    async function shown() {
      const res = await t.admin('GET', `/v1/nodes/${agent.nodeId}`);
      assert.equal(res.status, 200);
      return { latest: res.json.latest, lastSeenAt: res.json.lastSeenAt };
    }

    const heartbeatUrl = () => `${t.server.agentUrl}/v1/agent/heartbeat`;

    test('negative numbers are a 400 and leave the latest state untouched', async () => {
      const before = await shown();
      const good = sampleHeartbeat(2);
      const bad = [
        { ...good, seq: -1 },
        { ...good, uptimeSec: -5 },
        { ...good, cpuPct: -0.5 },
        { ...good, load: [-1, 0, 0] },
        { ...good, memory: { totalBytes: 8, availableBytes: -1 } },
        { ...good, disks: [{ mount: '/', totalBytes: -100, freeBytes: 0 }] },
      ];
      for (const body of bad) {
        const problem = assertProblem(await agent.heartbeat(body), 400, 'invalid_request');
        assert.match(problem.detail, /^body\./);
      }
      assert.deepEqual(await shown(), before);
    });

    test('absurdly large values are a 400 and leave the latest state untouched', async () => {
      const before = await shown();
      const good = sampleHeartbeat(3);
      const bad = [
        { ...good, seq: 1e300 },
        { ...good, uptimeSec: 1e300 },
        { ...good, cpuPct: 1e300 },
        { ...good, load: [1e300, 0, 0] },
        { ...good, memory: { totalBytes: 1e300, availableBytes: 0 } },
        { ...good, disks: [{ mount: '/', totalBytes: 1e300, freeBytes: 1e300 }] },
        { ...good, cpuPct: 101 },
        { ...good, sentAt: 'x'.repeat(10_000) },
      ];
      for (const body of bad) assertProblem(await agent.heartbeat(body), 400, 'invalid_request');
      // 1e400 parses to Infinity: still a number to JSON.parse, never one to the schema.
      const infinite = JSON.stringify(good).replace('"cpuPct":12.5', '"cpuPct":1e400');
      assert.ok(infinite.includes('1e400'));
      assertProblem(await httpsJson(heartbeatUrl(), { rawBody: infinite, agent: agent.agent }), 400);
      assert.deepEqual(await shown(), before);
    });

    test('values of the wrong JSON type are a 400, never coerced', async () => {
      const before = await shown();
      const good = sampleHeartbeat(4);
      const bad = [
        { ...good, cpuPct: '7' },
        { ...good, seq: '5' },
        { ...good, load: ['1', 0, 0] },
        { ...good, services: [{ name: 'sshd', active: 'true' }] },
        { ...good, services: [{ name: 'sshd', active: false, state: 'stopped' }] },
        { ...good, services: [{ name: 'sshd', active: false, state: 'unknown', reason: 'x'.repeat(513) }] },
        { ...good, disks: null },
      ];
      for (const body of bad) assertProblem(await agent.heartbeat(body), 400, 'invalid_request');
      assert.deepEqual(await shown(), before);
    });

    test('a 100,000-element disks array is a 400 (413 when it is also over 1 MiB); state untouched', async () => {
      const before = await shown();
      const disk = '{"mount":"/","totalBytes":1,"freeBytes":1}';
      const withDisks = (elements: string[]) =>
        JSON.stringify({ ...sampleHeartbeat(4), disks: [] }).replace('"disks":[]', `"disks":[${elements}]`);
      // Mostly empty elements keep the body under 1 MiB, so the schema, not the size limit, answers.
      const small = withDisks(Array.from({ length: 100_000 }, (_, i) => (i < 10_000 ? disk : '{}')));
      assert.ok(small.length < 1024 * 1024, `${small.length} bytes`);
      const problem = assertProblem(
        await httpsJson(heartbeatUrl(), { rawBody: small, agent: agent.agent }),
        400,
        'invalid_request',
      );
      assert.match(problem.detail, /disks/);
      const large = withDisks(Array.from({ length: 100_000 }, () => disk));
      assertProblem(
        await httpsJson(heartbeatUrl(), { rawBody: large, agent: agent.agent }),
        413,
        'body_too_large',
      );
      assert.deepEqual(await shown(), before);
    });

    test('a good heartbeat after all that is taken', async () => {
      const res = await agent.heartbeat(sampleHeartbeat(5));
      assert.equal(res.status, 202);
      assert.equal((await shown()).latest.seq, 5);
    });

    test('a heartbeat without a client certificate is a 401', async () => {
      const res = await httpsJson(heartbeatUrl(), { body: sampleHeartbeat(6), ca: t.server.identity.ca.pem });
      assertProblem(res, 401, 'no_identity');
    });

    for (const sameSubject of [false, true]) {
      const which = sameSubject ? "another CA with the fleet CA's own subject" : 'another CA';
      test(`a client certificate from ${which} is a 401, even copying a real node's serial and names`, async () => {
        const before = await shown();
        const rogue = await rogueIdentity(t, agent, sameSubject);
        const res = await httpsJson(heartbeatUrl(), {
          body: sampleHeartbeat(99),
          ca: t.server.identity.ca.pem,
          ...rogue,
        });
        assertProblem(res, 401, 'no_identity');
        assert.deepEqual(await shown(), before);
      });
    }

    test('a node certificate past its end is a 401, even where TLS does not notice', async () => {
      // The server's clock decides, not the peer's: move it past the certificate's 24 h.
      const other = await enrollAgent(t);
      assert.equal((await other.heartbeat()).status, 202);
      const now = t.clock.now();
      t.clock.advance(24 * 3_600_000 + 1000);
      try {
        assertProblem(await other.heartbeat(), 401, 'identity_expired');
      } finally {
        t.clock.set(now);
        other.agent.destroy();
      }
    });
  });
}
