import assert from 'node:assert/strict';
import { after, before, describe, mock, test } from 'node:test';
import {
  createToken,
  dialects,
  enrollAgent,
  postEnroll,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';

for (const dialect of dialects()) {
  describe(`enrollment signs only what it admits (${dialect})`, () => {
    let t: TestServer;
    /** A spy on the fleet CA's signer: every node certificate the server makes goes through it. */
    let signer: ReturnType<typeof mock.method>;
    before(async () => {
      t = await startTestServer(dialect);
      signer = mock.method(t.server.identity.ca, 'issueNodeCertificate');
    });
    after(async () => {
      signer.mock.restore();
      await t.close();
    });

    const usesLeft = async (id: string) =>
      (await t.admin('GET', '/v1/tokens')).json.items.find((item: { id: string }) => item.id === id)
        .usesLeft as number;

    test('100 enrollments with bad tokens cost no signature', async () => {
      const revoked = await t.admin('POST', '/v1/tokens', {});
      assert.equal((await t.admin('DELETE', `/v1/tokens/${revoked.json.id}`)).status, 204);
      const used = await createToken(t);
      await enrollAgent(t, { token: used }).then((agent) => agent.agent.destroy());
      const expired = await createToken(t, { ttlSec: 1 });
      t.clock.advance(2000);
      const before = signer.mock.callCount();

      const bad = [revoked.json.secret, used, expired, 'not-a-token', `${used}x`];
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) => postEnroll(t, { token: bad[i % bad.length]! })),
      );
      for (const res of answers) assertProblem(res, 401, 'bad_token');
      assert.equal(signer.mock.callCount() - before, 0, 'no certificate was signed');
      const nodes = await t.admin('GET', '/v1/nodes?limit=1000');
      assert.equal(nodes.json.items.length, 1, 'only the node the used token made');
    });

    test('a bad token is refused before the CSR is even looked at', async () => {
      assertProblem(await postEnroll(t, { token: 'not-a-token', csr: 'garbage' }), 401, 'bad_token');
    });

    test('a general token on a held name costs no signature', async () => {
      const holder = await enrollAgent(t, { name: 'signed-1' });
      holder.agent.destroy();
      const before = signer.mock.callCount();
      assertProblem(
        await postEnroll(t, { token: await createToken(t), name: 'signed-1' }),
        409,
        'name_taken',
      );
      assert.equal(signer.mock.callCount() - before, 0);
    });

    test('a good token costs exactly one signature', async () => {
      const before = signer.mock.callCount();
      const res = await postEnroll(t, { token: await createToken(t) });
      assert.equal(res.status, 201, res.body);
      assert.equal(signer.mock.callCount() - before, 1);
    });

    test('a signing that fails leaves the token unused', async () => {
      const created = await t.admin('POST', '/v1/tokens', {});
      signer.mock.mockImplementationOnce(() => {
        throw new Error('the CA key is unavailable');
      });
      assertProblem(await postEnroll(t, { token: created.json.secret }), 500, 'internal');
      assert.equal(await usesLeft(created.json.id), 1);
      const again = await postEnroll(t, { token: created.json.secret });
      assert.equal(again.status, 201, again.body);
      assert.equal(await usesLeft(created.json.id), 0);
    });
  });
}
