import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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
  describe(`join tokens (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    async function tokenState(id: string) {
      const list = await t.admin('GET', '/v1/tokens');
      assert.equal(list.status, 200);
      return list.json.items.find((item: { id: string }) => item.id === id);
    }

    test('unknown, used, expired and revoked tokens get one identical 401', async () => {
      const unknown = await postEnroll(t, { token: `mjt_${'A'.repeat(43)}` });

      const used = await createToken(t);
      await enrollAgent(t, { token: used }).then((a) => a.agent.destroy());
      const usedAgain = await postEnroll(t, { token: used });

      const revokedCreated = await t.admin('POST', '/v1/tokens', {});
      assert.equal((await t.admin('DELETE', `/v1/tokens/${revokedCreated.json.id}`)).status, 204);
      const revoked = await postEnroll(t, { token: revokedCreated.json.secret });

      const expiredCreated = await t.admin('POST', '/v1/tokens', { ttlSec: 60 });
      t.clock.advance(61_000);
      const expired = await postEnroll(t, { token: expiredCreated.json.secret });

      const answers = [unknown, usedAgain, expired, revoked].map((res) =>
        assertProblem(res, 401, 'bad_token'),
      );
      const [first, ...rest] = answers.map(({ requestId: _id, ...problem }) => problem);
      for (const other of rest) assert.deepEqual(other, first);
      assert.match(first!.detail, /join token is not valid/);

      // The operator still tells them apart in `muster token ls`.
      assert.equal((await tokenState(revokedCreated.json.id)).state, 'revoked');
      assert.equal((await tokenState(expiredCreated.json.id)).state, 'expired');
      const nodes = await t.admin('GET', '/v1/nodes');
      assert.equal(nodes.json.items.length, 1, 'only the first use of the used token made a node');
    });

    test('a token with three uses enrolls three nodes and then no more', async () => {
      const created = await t.admin('POST', '/v1/tokens', { uses: 3 });
      assert.equal(created.status, 201);
      for (let i = 0; i < 3; i++) {
        const agent = await enrollAgent(t, { token: created.json.secret });
        agent.agent.destroy();
      }
      assertProblem(await postEnroll(t, { token: created.json.secret }), 401, 'bad_token');
      const state = await tokenState(created.json.id);
      assert.equal(state.usesLeft, 0);
      assert.equal(state.state, 'used');
    });

    test('the secret is shown once, at creation, and stored only as a hash', async () => {
      const created = await t.admin('POST', '/v1/tokens', { profile: 'web', labels: { zone: 'a' } });
      assert.equal(created.status, 201);
      assert.match(created.json.secret, /^mjt_[A-Za-z0-9_-]{43}$/);
      // The secret reaches the agent on stdin, never in its argv (where `ps` shows it).
      assert.ok(created.json.agentCommand.startsWith(`printf '%s' '${created.json.secret}' | muster agent `));
      assert.ok(created.json.agentCommand.endsWith(' --token-file -'));
      assert.ok(!created.json.agentCommand.includes('--token '));
      const list = await t.admin('GET', '/v1/tokens');
      assert.ok(!list.body.includes(created.json.secret));
      const rows = await t.server.store.db.selectFrom('tokens').selectAll().execute();
      assert.ok(!JSON.stringify(rows).includes(created.json.secret));
    });

    test('revoking an unknown token is a 404 problem; revoking twice is fine', async () => {
      assertProblem(await t.admin('DELETE', '/v1/tokens/tok_0000000000000000'), 404, 'not_found');
      const created = await t.admin('POST', '/v1/tokens', {});
      assert.equal((await t.admin('DELETE', `/v1/tokens/${created.json.id}`)).status, 204);
      assert.equal((await t.admin('DELETE', `/v1/tokens/${created.json.id}`)).status, 204);
    });

    test('a token name that is not a node name is refused with 422', async () => {
      assertProblem(await t.admin('POST', '/v1/tokens', { name: '../x' }), 422, 'bad_name');
    });
  });
}
