import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decisionsAbout, dialects, startTestServer, type TestServer } from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';
import { assertProblem } from '../../testing/problems.js';

for (const dialect of dialects()) {
  describe(`GET /v1/me and sign-in links for users (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(() => t?.close());

    test('GET /v1/me names the user, their role and the rules of every role that must allow a request', async () => {
      const role = await t.admin('POST', '/v1/roles', {
        name: 'prod-watch',
        allow: [{ verbs: ['read'], resources: ['nodes'], nodes: { labels: { env: 'prod' } } }],
      });
      assert.equal(role.status, 200, role.body);
      const { id, secret } = await userToken(t, 'vera', 'viewer', { role: 'prod-watch' });
      const me = await as(t, secret, 'GET', '/v1/me');
      assert.equal(me.status, 200, me.body);
      assert.equal(me.json.user, 'vera');
      assert.equal(me.json.role, 'viewer');
      assert.equal(me.json.credential, id);
      assert.deepEqual(
        me.json.roles.map((r: { name: string }) => r.name),
        ['viewer', 'prod-watch'],
      );
      assert.deepEqual(me.json.roles[1].allow[0].nodes, { labels: { env: 'prod' } });
      const admin = await t.admin('GET', '/v1/me');
      assert.equal(admin.json.user, 'admin');
      assert.equal(admin.json.credential, 'bootstrap');
      assert.equal((await t.server.app.admin.inject({ method: 'GET', url: '/v1/me' })).statusCode, 401);
    });

    test('an admin makes a one-time link that signs in as that user, once; it is a ledger decision', async () => {
      await userToken(t, 'lena', 'operator');
      const made = await t.admin('POST', '/v1/users/lena/links', {});
      assert.equal(made.status, 201, made.body);
      assert.equal(made.headers['cache-control'], 'no-store');
      assert.equal(made.json.path, `/#code=${made.json.code}`);
      const plane = t.server.app.admin;
      const signIn = () =>
        plane.inject({ method: 'POST', url: '/v1/session', payload: { code: made.json.code } });
      const session = await signIn();
      assert.equal(session.statusCode, 201, session.body);
      const cookie = String(session.headers['set-cookie']).split(';')[0]!;
      const me = await plane.inject({ method: 'GET', url: '/v1/me', headers: { cookie } });
      assert.equal(me.json().user, 'lena');
      assert.equal(me.json().role, 'operator');
      assert.equal((await signIn()).statusCode, 401, 'a link works once');
      const [decision] = (await decisionsAbout(t, 'user:lena')).filter((d) => d.kind === 'user.link_issued');
      assert.equal(decision?.actor, 'user:admin');
      assert.doesNotMatch(JSON.stringify(decision), new RegExp(made.json.code));
    });

    test('no link for a user who does not exist or is disabled, nor made by a non-admin', async () => {
      assertProblem(await t.admin('POST', '/v1/users/nobody/links', {}), 404, 'no_user');
      await userToken(t, 'dora', 'viewer');
      assert.equal((await t.admin('POST', '/v1/users/dora/disable')).status, 200);
      const refused = assertProblem(await t.admin('POST', '/v1/users/dora/links', {}), 409, 'user_disabled');
      assert.match(refused.detail, /user dora is disabled/);
      const { secret } = await userToken(t, 'otto', 'operator');
      const denied = assertProblem(await as(t, secret, 'POST', '/v1/users/otto/links', {}), 403, 'forbidden');
      assert.equal(denied.detail, 'role operator may not update users');
    });
  });
}
