import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { dialects, startReplicas } from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';
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
