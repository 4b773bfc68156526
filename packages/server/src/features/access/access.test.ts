import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createToken,
  decisionsAbout,
  dialects,
  enrollAgent,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';
import { assertProblem } from '../../testing/problems.js';

for (const dialect of dialects()) {
  describe(`people and roles (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test('a viewer reads; a delete is 403 naming role, verb and resource, with the access.denied event', async () => {
      const { secret } = await userToken(t, 'vera', 'viewer');
      assert.equal((await as(t, secret, 'GET', '/v1/nodes')).status, 200);
      const agent = await enrollAgent(t);
      const refused = await as(t, secret, 'DELETE', `/v1/nodes/${agent.nodeId}`);
      const problem = assertProblem(refused, 403, 'forbidden');
      assert.equal(problem.detail, 'role viewer may not delete nodes');
      const eventId = refused.json.eventId as number;
      assert.equal(typeof eventId, 'number');
      const events = await t.admin('GET', '/v1/events?kind=access.denied&limit=10');
      const event = events.json.items.find((e: { id: number }) => e.id === eventId);
      assert.ok(event, 'the access.denied event named in the 403 exists');
      assert.equal(event.actor, 'user:vera');
      assert.equal(event.data.verb, 'delete');
      assert.equal(event.data.resource, 'nodes');
      assert.equal(
        (await t.admin('GET', `/v1/nodes/${agent.nodeId}`)).status,
        200,
        'the node is still there',
      );
      const tokens = assertProblem(await as(t, secret, 'POST', '/v1/tokens', {}), 403, 'forbidden');
      assert.equal(tokens.detail, 'role viewer may not create tokens');
      agent.agent.destroy();
    });

    test('a token past expiry, revoked, or of a disabled user is 401; enabling the user brings it back', async () => {
      const expiring = await userToken(t, 'eve', 'operator', { ttlSec: 60 });
      assert.equal((await as(t, expiring.secret, 'GET', '/v1/nodes')).status, 200);
      t.clock.advance(61_000);
      assertProblem(await as(t, expiring.secret, 'GET', '/v1/nodes'), 401);

      const revoked = await t.admin('POST', '/v1/apitokens', { user: 'eve' });
      assert.equal((await as(t, revoked.json.secret, 'GET', '/v1/nodes')).status, 200);
      assert.equal((await t.admin('DELETE', `/v1/apitokens/${revoked.json.id}`)).status, 204);
      assertProblem(await as(t, revoked.json.secret, 'GET', '/v1/nodes'), 401);

      const live = await t.admin('POST', '/v1/apitokens', { user: 'eve' });
      assert.equal((await t.admin('POST', '/v1/users/eve/disable')).status, 200);
      assertProblem(await as(t, live.json.secret, 'GET', '/v1/nodes'), 401);
      assert.equal((await t.admin('POST', '/v1/users/eve/enable')).status, 200);
      assert.equal((await as(t, live.json.secret, 'GET', '/v1/nodes')).status, 200);
      const kinds = (await decisionsAbout(t, 'user:eve')).map((d) => d.kind);
      assert.deepEqual(kinds, ['user.added', 'user.login_code_issued', 'user.disabled', 'user.enabled']);
    });

    test('an API token above its creator is 403; an operator makes their own, within their role', async () => {
      const op = await userToken(t, 'otto', 'operator');
      const above = assertProblem(
        await as(t, op.secret, 'POST', '/v1/apitokens', { role: 'admin' }),
        403,
        'forbidden',
      );
      assert.match(above.detail, /role admin is above role operator/);
      assertProblem(await as(t, op.secret, 'POST', '/v1/apitokens', { user: 'vera' }), 403, 'forbidden');
      const mine = await as(t, op.secret, 'POST', '/v1/apitokens', { role: 'viewer', name: 'ci' });
      assert.equal(mine.status, 201, mine.body);
      assert.equal(mine.json.user, 'otto');
      // The narrower token acts as a viewer, though its user is an operator.
      const note = { kind: 'note', text: 'hello' };
      assertProblem(await as(t, mine.json.secret, 'POST', '/v1/events', note), 403, 'forbidden');
      assert.equal((await as(t, op.secret, 'POST', '/v1/events', note)).status, 201);
      const listed = await as(t, mine.json.secret, 'GET', '/v1/apitokens');
      assert.ok(listed.json.items.every((k: { secret?: string }) => k.secret === undefined));
    });

    test('decisions name user:<name> with the credential, and the ledger filters by actor', async () => {
      const admin = await userToken(t, 'alice', 'admin');
      const made = await as(t, admin.secret, 'POST', '/v1/tokens', {});
      assert.equal(made.status, 201);
      const [decision] = await decisionsAbout(t, `token:${made.json.id}`);
      assert.equal(decision!.actor, 'user:alice');
      assert.equal(decision!.data.credential, admin.id);
      const byAlice = await t.admin('GET', '/v1/ledger/decisions?actor=user:alice');
      assert.deepEqual(
        byAlice.json.items.map((e: { kind: string }) => e.kind),
        ['token.created'],
      );
      const byAdmin = await t.admin('GET', '/v1/ledger/decisions?actor=user:admin&limit=1000');
      assert.ok(byAdmin.json.items.some((e: { subject: string }) => e.subject === 'user:alice'));
      assert.ok(byAdmin.json.items.every((e: { actor: string }) => e.actor === 'user:admin'));
    });

    test('last use is recorded, written at most once a minute', async () => {
      const { id, secret } = await userToken(t, 'lou', 'viewer');
      const lastUsed = async () =>
        (await t.admin('GET', '/v1/apitokens')).json.items.find((k: { id: string }) => k.id === id)
          .lastUsedAt;
      assert.equal(await lastUsed(), null);
      await as(t, secret, 'GET', '/v1/nodes');
      await t.server.app.credentials.idle();
      const first = await lastUsed();
      assert.ok(first);
      t.clock.advance(30_000);
      await as(t, secret, 'GET', '/v1/nodes');
      await t.server.app.credentials.idle();
      assert.equal(await lastUsed(), first, 'not written again within the minute');
      t.clock.advance(31_000);
      await as(t, secret, 'GET', '/v1/nodes');
      await t.server.app.credentials.idle();
      assert.notEqual(await lastUsed(), first);
    });

    test('a role with an unknown verb or resource, or named like a built-in, is refused by the server too', async () => {
      const unknown = await t.admin('POST', '/v1/roles', {
        name: 'wide',
        allow: [
          { verbs: ['read'], resources: ['nodes'] },
          { verbs: ['reboot'], resources: ['planets'] },
        ],
      });
      const problem = assertProblem(unknown, 422, 'bad_role');
      assert.match(
        problem.detail,
        /allow\[1\]: unknown verb "reboot".*allow\[1\]: unknown resource "planets"/,
      );
      const builtin = await t.admin('POST', '/v1/roles', { name: 'viewer', allow: [] });
      assert.match(assertProblem(builtin, 422, 'bad_role').detail, /built-in/);
      assert.equal((await t.admin('GET', '/v1/roles/wide')).status, 404);
    });

    test('a role narrowed to env=staging reaches only the nodes it selects', async () => {
      const role = await t.admin('POST', '/v1/roles', {
        name: 'staging-ops',
        allow: [
          {
            verbs: ['read', 'update', 'delete'],
            resources: ['nodes'],
            nodes: { labels: { env: 'staging' } },
          },
        ],
      });
      assert.equal(role.status, 200, role.body);
      const { secret } = await userToken(t, 'sam', 'staging-ops');
      const staging = await enrollAgent(t, { token: await createToken(t, { labels: { env: 'staging' } }) });
      const prod = await enrollAgent(t, { token: await createToken(t, { labels: { env: 'prod' } }) });
      assertProblem(await as(t, secret, 'GET', `/v1/nodes/${prod.nodeId}`), 403, 'forbidden');
      const outside = assertProblem(
        await as(t, secret, 'DELETE', `/v1/nodes/${prod.nodeId}`),
        403,
        'forbidden',
      );
      assert.equal(
        outside.detail,
        `role staging-ops may not delete nodes outside its scope (node ${prod.nodeId})`,
      );
      assert.equal((await as(t, secret, 'GET', `/v1/nodes/${staging.nodeId}`)).status, 200);
      assert.equal((await as(t, secret, 'GET', `/v1/nodes/${staging.name}`)).status, 200, 'by name too');
      assertProblem(await as(t, secret, 'GET', `/v1/nodes/${prod.name}`), 403, 'forbidden');
      assert.equal((await as(t, secret, 'DELETE', `/v1/nodes/${staging.nodeId}`)).status, 204);
      staging.agent.destroy();
      prod.agent.destroy();
    });

    test('a console session belongs to the user who signed in, and stops when they are disabled', async () => {
      const { secret } = await userToken(t, 'cora', 'viewer');
      const signin = await t.server.app.admin.inject({
        method: 'POST',
        url: '/v1/session',
        payload: { token: secret },
      });
      assert.equal(signin.statusCode, 201, signin.body);
      const cookie = String(signin.headers['set-cookie']).split(';')[0]!;
      const csrf = signin.json().csrf as string;
      const read = await t.server.app.admin.inject({ method: 'GET', url: '/v1/nodes', headers: { cookie } });
      assert.equal(read.statusCode, 200);
      const write = await t.server.app.admin.inject({
        method: 'POST',
        url: '/v1/tokens',
        headers: { cookie, 'x-muster-csrf': csrf },
        payload: {},
      });
      assert.equal(write.statusCode, 403, 'the session acts with the viewer role');
      assert.equal(write.json().detail, 'role viewer may not create tokens');
      assert.equal((await t.admin('POST', '/v1/users/cora/disable')).status, 200);
      const after = await t.server.app.admin.inject({ method: 'GET', url: '/v1/nodes', headers: { cookie } });
      assert.equal(after.statusCode, 401);
    });

    test('revoking bootstrap retires admin.token', async () => {
      const { secret } = await userToken(t, 'root', 'admin');
      const listed = await as(t, secret, 'GET', '/v1/apitokens');
      const bootstrap = listed.json.items.find((k: { id: string }) => k.id === 'bootstrap');
      assert.equal(bootstrap.user, 'admin');
      assert.equal((await as(t, secret, 'DELETE', '/v1/apitokens/bootstrap')).status, 204);
      assertProblem(await t.admin('GET', '/v1/nodes'), 401);
    });
  });
}
