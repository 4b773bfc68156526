import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import { enrollAgent, startTestServer, type TestAgent, type TestServer } from '../testing/harness.js';

/** The certificate a new TLS connection to the agent plane is shown. */
async function presented(t: TestServer): Promise<X509Certificate> {
  const url = new URL(t.server.agentUrl);
  return new Promise((resolve, reject) => {
    // Only reading what is presented: its time may be in the test clock's future.
    const socket = connect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error('no certificate presented'));
    });
    socket.on('error', reject);
  });
}

// Not a store test: the server's own certificate lives in its data dir, so SQLite is enough.
describe('the server renews its own TLS certificate in place', () => {
  let t: TestServer;
  let node: TestAgent;
  before(async () => {
    t = await startTestServer('sqlite', { settings: { 'cert-lifetime': '900h' } });
    node = await enrollAgent(t);
  });
  after(async () => {
    node.agent.destroy();
    await t.close();
  });

  test('not before a third of its lifetime is left; then new connections get a new one and open ones carry on', async () => {
    assert.equal((await node.heartbeat()).status, 202);
    const before = await presented(t);
    assert.equal(await t.server.renewServerIdentity(), false);
    assert.equal((await presented(t)).serialNumber, before.serialNumber);

    t.clock.advance(21 * 86_400_000);
    assert.equal(await t.server.renewServerIdentity(), true);
    const after = await presented(t);
    assert.notEqual(after.serialNumber, before.serialNumber);
    assert.ok(after.checkIssued(t.server.identity.ca.certificate));
    assert.ok(after.verify(t.server.identity.ca.certificate.publicKey));
    assert.equal(after.subjectAltName, before.subjectAltName);
    assert.ok(after.publicKey.equals(before.publicKey), 'same key');
    assert.equal(
      new X509Certificate(await readFile(t.server.identity.paths.serverCert)).serialNumber,
      after.serialNumber,
    );
    assert.equal(await t.server.renewServerIdentity(), false, 'renewed once, not again');

    // The agent's kept-alive connection was set up before and is still the one it uses.
    assert.equal((await node.heartbeat()).status, 202);
    assert.equal(node.sockets.length, 1);
  });
});
