import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { dialects, startReplicas } from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';
import { openSse, poll } from '../events/sse.test-support.js';
import { installAccessGuard } from './guard.js';

for (const dialect of dialects()) {
  describe(`people across replicas (${dialect})`, () => {
    test('a user disabled on one replica is refused on the other at once, and a role change too', async () => {
      const { a, b, close } = await startReplicas(dialect);
      try {
        const { secret } = await userToken(a, 'rita', 'operator');
        assert.equal((await as(b, secret, 'POST', '/v1/events', { kind: 'note', text: 'hi' })).status, 201);
        assert.equal((await a.admin('POST', '/v1/users/rita/role', { role: 'viewer' })).status, 200);
        assert.equal((await as(b, secret, 'POST', '/v1/events', { kind: 'note', text: 'hi' })).status, 403);
        assert.equal((await a.admin('POST', '/v1/users/rita/disable')).status, 200);
        // No cache stands between the store and the check: the very next request is refused.
        assert.equal((await as(b, secret, 'GET', '/v1/nodes')).status, 401);
        const users = await b.admin('GET', '/v1/users/rita');
        assert.equal(users.json.disabled, true);
      } finally {
        await close();
      }
    });

    test('a custom role applied on one replica decides on the other at once, and a revoked token stops there', async () => {
      const { a, b, close } = await startReplicas(dialect);
      try {
        const apply = (allow: unknown[]) => a.admin('POST', '/v1/roles', { name: 'notes', allow });
        assert.equal((await apply([{ verbs: ['read'], resources: ['events'] }])).status, 200);
        const { id, secret } = await userToken(a, 'nora', 'notes');
        const note = () => as(b, secret, 'POST', '/v1/events', { kind: 'note', text: 'hi' });
        assert.equal((await note()).status, 403);
        assert.equal((await as(b, secret, 'GET', '/v1/events')).status, 200);
        // Applied again on A with a rule more: B's very next request is decided by the new rules.
        assert.equal((await apply([{ verbs: ['read', 'create'], resources: ['events'] }])).status, 200);
        assert.equal((await note()).status, 201);
        assert.deepEqual((await b.admin('GET', '/v1/roles/notes')).json.allow[0].verbs, ['read', 'create']);
        assert.equal((await a.admin('DELETE', `/v1/apitokens/${id}`)).status, 204);
        assert.equal((await as(b, secret, 'GET', '/v1/events')).status, 401);
        const listed = (await b.admin('GET', '/v1/apitokens')).json.items.find(
          (t: { id: string }) => t.id === id,
        );
        assert.equal(listed.state, 'revoked');
      } finally {
        await close();
      }
    });

    test('a user disabled on one replica loses the event stream they hold open on the other', async () => {
      const { a, b, close } = await startReplicas(dialect);
      try {
        const { secret } = await userToken(a, 'sid', 'viewer');
        const stream = await openSse(b.server.adminUrl, secret);
        assert.equal(stream.status, 200);
        await poll(() => stream.comments.includes('connected'));
        assert.equal((await a.admin('POST', '/v1/users/sid/disable')).status, 200);
        // Cut by B's next check of the credential (every few seconds), not left open forever.
        await poll(() => stream.closed, 20_000);
        assert.equal((await openSse(b.server.adminUrl, secret)).status, 401);
      } finally {
        await close();
      }
    });
  });
}

test('an admin route that declares no access fails at startup', async () => {
  const app = Fastify();
  await assert.rejects(async () => {
    await app.register(async (scope) => {
      installAccessGuard(scope, { nodeFacets: async () => undefined, recordDenial: async () => 0 });
      scope.get('/v1/unruled', async () => ({}));
    });
  }, /admin route GET \/v1\/unruled declares no access/);
  await app.close().catch(() => {});
});
