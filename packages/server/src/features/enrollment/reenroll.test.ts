import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createToken,
  decisionsAbout,
  dialects,
  postEnroll,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';

for (const dialect of dialects()) {
  describe(`enrolling again under a name (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect, { settings: { 'cert-lifetime': '1h' } });
    });
    after(async () => {
      await t.close();
    });

    test('is refused while the node holding it has a valid certificate, and allowed once it has expired', async () => {
      const first = await postEnroll(t, { token: await createToken(t), name: 'again-1' });
      assert.equal(first.status, 201);
      assertProblem(await postEnroll(t, { token: await createToken(t), name: 'again-1' }), 409, 'name_taken');

      t.clock.advance(3_600_000 + 1000);
      const second = await postEnroll(t, { token: await createToken(t), name: 'again-1' });
      assert.equal(second.status, 201, second.body);
      assert.notEqual(second.json.nodeId, first.json.nodeId);

      const old = await t.admin('GET', `/v1/nodes/${first.json.nodeId}`);
      assert.equal(old.json.status, 'decommissioned');
      const current = await t.admin('GET', '/v1/nodes/again-1');
      assert.equal(current.json.id, second.json.nodeId);
      const replaced = (await decisionsAbout(t, `node:${first.json.nodeId}`)).find(
        (d) => d.kind === 'node.replaced',
      );
      assert.equal(replaced?.data.replacedBy, second.json.nodeId);
      // The replaced node's certificates are revoked with it.
      const live = await t.server.store.db
        .selectFrom('certificates')
        .select('serial')
        .where('node_id', '=', first.json.nodeId)
        .where('revoked_at', 'is', null)
        .execute();
      assert.deepEqual(live, []);
    });
  });
}
