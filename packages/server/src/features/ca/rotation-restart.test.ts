import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dialects, enrollAgent, startReplicas, startTestServer } from '../../testing/harness.js';
import { issuedBy, presentedCertificate as presented } from '../../testing/tls.js';

for (const dialect of dialects()) {
  describe(`CA rotation across restarts and replicas (${dialect})`, () => {
    test('a server restarted mid-overlap keeps the overlap, and can finish it', async () => {
      const first = await startTestServer(dialect);
      try {
        const oldPem = first.server.identity.ca.pem;
        const node = await enrollAgent(first, { name: 'restart-a' });
        node.agent.destroy();
        assert.equal((await first.admin('POST', '/v1/ca/rotate')).status, 201);
        const newPin = first.server.identity.nextCa!.pin;
        await first.server.stop();

        const again = await startTestServer(dialect, {
          db: first.db,
          dataDir: first.dataDir,
          clock: first.clock,
        });
        try {
          const status = await again.admin('GET', '/v1/ca');
          assert.equal(status.json.ca.pin, newPin);
          assert.equal(status.json.rotation.nodesOnRetiring, 1);
          assert.equal(again.server.identity.ca.pem, oldPem, 'the old root is still presented');
          assert.ok(issuedBy(await presented(again), oldPem));
          const fresh = await enrollAgent(again, { name: 'restart-b' });
          fresh.agent.destroy();
          assert.ok(issuedBy(fresh.certPem, again.server.identity.nextCa!.pem));
          assert.equal((await again.admin('POST', '/v1/ca/finish', { force: true })).status, 200);
          assert.equal(again.server.identity.ca.pin, newPin);
        } finally {
          await again.close();
        }
        // And a start after the finish finds the new root in ca.pem, with nothing half done.
        const third = await startTestServer(dialect, { db: first.db, dataDir: first.dataDir });
        try {
          assert.equal(third.server.identity.ca.pin, newPin);
          assert.equal(third.server.identity.nextCa, undefined);
          assert.equal((await third.admin('GET', '/v1/ca')).json.rotation, null);
          assert.ok(issuedBy(await presented(third), third.server.identity.ca.pem));
        } finally {
          await third.close();
        }
      } finally {
        await first.close();
      }
    });

    test('a replica takes up a rotation another started and finished', async () => {
      const { a, b, close } = await startReplicas(dialect);
      try {
        assert.equal((await a.admin('POST', '/v1/ca/rotate')).status, 201);
        const twice = await b.admin('POST', '/v1/ca/rotate');
        assert.equal(twice.status, 409, 'the store holds one rotation for every replica');
        await b.server.app.caRotation.sync();
        const newCa = a.server.identity.nextCa!;
        assert.equal(b.server.identity.nextCa?.pin, newCa.pin);
        const onB = await enrollAgent(b, { name: 'replica-b' });
        onB.agent.destroy();
        assert.ok(issuedBy(onB.certPem, newCa.pem), 'replica b issues from the new root');

        assert.equal((await a.admin('POST', '/v1/ca/finish', {})).status, 200);
        await b.server.app.caRotation.sync();
        assert.equal(b.server.identity.ca.pin, newCa.pin);
        assert.ok(issuedBy(await presented(b), newCa.pem), 'replica b presents the new root too');
        assert.equal((await b.admin('GET', '/v1/ca')).json.rotation, null);
      } finally {
        await close();
      }
    });
  });
}
