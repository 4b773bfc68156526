import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startTestServer, type TestServer } from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';

const ROLES = ['viewer', 'operator', 'admin'] as const;
type Role = (typeof ROLES)[number];

/**
 * The least built-in role each admin route needs. A route missing here fails the test: every
 * new route gets a rule, and the rule is checked against what the server really answers.
 */
const LEAST: Record<string, Role> = {
  'GET /v1/apitokens': 'viewer',
  'POST /v1/apitokens': 'viewer',
  'DELETE /v1/apitokens/{id}': 'viewer',
  'GET /v1/ca': 'viewer',
  'POST /v1/ca/finish': 'admin',
  'POST /v1/ca/rotate': 'admin',
  'POST /v1/console/links': 'viewer',
  'GET /v1/commands': 'viewer',
  'POST /v1/commands': 'operator',
  'GET /v1/commands/{id}': 'viewer',
  'POST /v1/commands/{id}/approvals': 'operator',
  'GET /v1/events': 'viewer',
  'POST /v1/events': 'operator',
  'GET /v1/events/stream': 'viewer',
  'GET /v1/fleet': 'viewer',
  'POST /v1/jobs/plan': 'operator',
  'GET /v1/jobs': 'viewer',
  'POST /v1/jobs': 'operator',
  'GET /v1/jobs/{id}': 'viewer',
  'DELETE /v1/jobs/{id}': 'admin',
  'GET /v1/jobs/{id}/explain': 'viewer',
  'GET /v1/ledger/checkpoint': 'viewer',
  'GET /v1/ledger/decisions': 'viewer',
  'GET /v1/ledger/entries': 'viewer',
  'GET /v1/ledger/key': 'viewer',
  'GET /v1/ledger/proof/consistency': 'viewer',
  'GET /v1/ledger/proof/inclusion': 'viewer',
  'GET /v1/nodes': 'viewer',
  'DELETE /v1/nodes/{id}': 'admin',
  'GET /v1/nodes/{id}': 'viewer',
  'POST /v1/nodes/{id}/rotate': 'admin',
  'GET /v1/nodes/{id}/telemetry': 'viewer',
  'GET /v1/operators': 'viewer',
  'POST /v1/operators': 'admin',
  'GET /v1/policy': 'viewer',
  'POST /v1/policy': 'admin',
  'GET /v1/roles': 'viewer',
  'GET /v1/roles/{name}': 'viewer',
  'POST /v1/roles': 'admin',
  'GET /v1/tokens': 'viewer',
  'POST /v1/tokens': 'admin',
  'DELETE /v1/tokens/{id}': 'admin',
  'GET /v1/install': 'viewer',
  'GET /v1/users': 'viewer',
  'POST /v1/users': 'admin',
  'GET /v1/users/{name}': 'viewer',
  'POST /v1/users/{name}/disable': 'admin',
  'POST /v1/users/{name}/enable': 'admin',
  'POST /v1/users/{name}/role': 'admin',
  'GET /v1/enrollment/requests': 'viewer',
  'POST /v1/enrollment/requests/{name}/approve': 'admin',
  'POST /v1/enrollment/requests/{name}/reject': 'admin',
  'POST /v1/enrollment/grants': 'admin',
  'POST /v1/users/{name}/email': 'admin',
  'POST /v1/users/{name}/links': 'admin',
  'POST /v1/users/{name}/login-code': 'admin',
  'GET /v1/me': 'viewer',
  'POST /v1/users/{name}/certificates/revoke': 'admin',
};
/** Admin-plane routes outside the role guard: console sign-in and sign-out, and `muster login`, check their own credential. */
const UNGUARDED = new Set([
  'POST /v1/session',
  'GET /v1/session',
  'DELETE /v1/session',
  'GET /v1/session/sso',
  'POST /v1/session/sso',
  'POST /v1/session/sso/callback',
  'POST /v1/login',
]);

for (const dialect of dialects()) {
  describe(`every admin route × every built-in role (${dialect})`, () => {
    let t: TestServer;
    const secrets = {} as Record<Role, string>;
    before(async () => {
      t = await startTestServer(dialect);
      for (const role of ROLES) secrets[role] = (await userToken(t, `table-${role}`, role)).secret;
    });
    after(async () => {
      await t.close();
    });

    test('a role below the route answers 403 forbidden; one at or above gets no 401 or 403', async () => {
      const doc = (await t.admin('GET', '/openapi.json')).json;
      const routes: string[] = [];
      for (const [path, operations] of Object.entries(
        doc.paths as Record<string, Record<string, { tags: string[] }>>,
      ))
        for (const [method, op] of Object.entries(operations))
          if (op.tags.includes('admin') && path.startsWith('/v1/'))
            routes.push(`${method.toUpperCase()} ${path}`);
      const unruled = routes.filter((r) => !UNGUARDED.has(r) && LEAST[r] === undefined);
      assert.deepEqual(unruled, [], 'admin routes without an expected role in this table');
      for (const route of routes.filter((r) => !UNGUARDED.has(r))) {
        const [method, path] = route.split(' ') as [string, string];
        // Missing ids, and a query no route accepts where a stream would otherwise stay open.
        let url = path.replace('{id}', 'zz-missing-0001').replace('{name}', 'nobody');
        if (path === '/v1/events/stream') url += '?lastEventId=not-a-number';
        for (const role of ROLES) {
          const res = await as(t, secrets[role], method, url, method === 'GET' ? undefined : {});
          const least = LEAST[route]!;
          if (ROLES.indexOf(role) < ROLES.indexOf(least)) {
            assert.equal(res.status, 403, `${role} ${route}: ${res.body}`);
            assert.equal(res.json.code, 'forbidden');
            assert.match(res.json.detail, new RegExp(`^role ${role} may not `));
          } else {
            assert.ok(
              ![401, 403].includes(res.status),
              `${role} ${route} answered ${res.status}: ${res.body}`,
            );
          }
        }
      }
    });
  });
}
