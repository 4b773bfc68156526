import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import {
  createToken,
  dialects,
  enrollAgent,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../testing/harness.js';

type Schema = Record<string, unknown>;
interface Operation {
  security: Array<Record<string, string[]>>;
  requestBody?: { required: boolean; content: { 'application/json': { schema: Schema } } };
}
interface Route {
  method: string;
  path: string;
  operation: Operation;
}

const MUTATING = new Set(['post', 'put', 'patch', 'delete']);

function routesOf(doc: { paths: Record<string, Record<string, Operation>> }): Route[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, operation]) => ({ method, path, operation })),
  );
}

/** Every object in a request schema refuses keys it does not name (or match): where each is open. */
function openObjects(schema: unknown, at: string, out: string[] = []): string[] {
  if (typeof schema !== 'object' || schema === null) return out;
  const s = schema as Schema;
  const types = Array.isArray(s.type) ? s.type : [s.type];
  if ((types.includes('object') || s.properties || s.patternProperties) && s.additionalProperties !== false)
    out.push(at);
  for (const [key, sub] of Object.entries((s.properties ?? {}) as Schema))
    openObjects(sub, `${at}.${key}`, out);
  for (const [key, sub] of Object.entries((s.patternProperties ?? {}) as Schema))
    openObjects(sub, `${at}[${key}]`, out);
  if (s.items) openObjects(s.items, `${at}[]`, out);
  for (const list of [s.anyOf, s.oneOf, s.allOf])
    if (Array.isArray(list)) for (const [i, sub] of list.entries()) openObjects(sub, `${at}|${i}`, out);
  return out;
}

for (const dialect of dialects()) {
  describe(`every route keeps to what it declares (${dialect})`, () => {
    let t: TestServer;
    let agent: TestAgent;
    let routes: Route[];
    before(async () => {
      t = await startTestServer(dialect);
      agent = await enrollAgent(t, { name: 'contract-1' });
      routes = routesOf((await t.server.app.admin.inject({ method: 'GET', url: '/openapi.json' })).json());
    });
    after(async () => {
      agent.agent.destroy();
      await t.close();
    });

    const plane = (route: Route): FastifyInstance =>
      route.operation.security.some((s) => 'nodeCertificate' in s) || route.path === '/v1/enroll'
        ? t.server.app.agent
        : t.server.app.admin;

    test('every route that changes state declares its body, and every body schema is closed', () => {
      const mutating = routes.filter((r) => MUTATING.has(r.method));
      assert.ok(mutating.length >= 15, `found ${mutating.length}`);
      for (const route of mutating) {
        const body = route.operation.requestBody;
        assert.ok(body, `${route.method.toUpperCase()} ${route.path} declares a body, or that it takes none`);
        const schema = body.content['application/json'].schema;
        assert.deepEqual(openObjects(schema, 'body'), [], `${route.method.toUpperCase()} ${route.path}`);
        if (!body.required)
          assert.equal(schema.maxProperties, 0, `${route.path}: an optional body is an empty one`);
      }
      const none = mutating
        .filter((r) => !r.operation.requestBody!.required)
        .map((r) => `${r.method} ${r.path}`);
      assert.deepEqual(none.sort(), [
        'delete /v1/apitokens/{id}',
        'delete /v1/jobs/{id}',
        'delete /v1/nodes/{id}',
        'delete /v1/session',
        'delete /v1/tokens/{id}',
        'post /v1/ca/rotate',
        'post /v1/enrollment/requests/{name}/reject',
        'post /v1/nodes/{id}/rotate',
        'post /v1/session/sso',
        'post /v1/users/{name}/disable',
        'post /v1/users/{name}/enable',
        'post /v1/users/{name}/login-code',
      ]);
    });

    test('signing in needs no credential; every route that says it needs one refuses a request without', async () => {
      const session = routes.filter((r) => r.path === '/v1/session');
      assert.deepEqual(
        session.map((r) => [r.method, r.operation.security]),
        [
          ['delete', [{ consoleSession: [] }]],
          ['get', [{ consoleSession: [] }]],
          ['post', []],
        ],
      );
      for (const route of routes) {
        const url = route.path.replace('{id}', agent.nodeId);
        const res = await plane(route).inject({
          method: route.method.toUpperCase() as 'GET',
          url,
          ...(MUTATING.has(route.method) && route.operation.requestBody?.required ? { payload: {} } : {}),
        });
        const what = `${route.method.toUpperCase()} ${route.path}: ${res.statusCode} ${res.body.slice(0, 200)}`;
        const refused =
          res.statusCode === 401 &&
          ['unauthorized', 'no_identity', 'session_ended'].includes(res.json().code);
        assert.equal(refused, route.operation.security.length > 0, what);
      }
    });

    test('a body sent to a route that takes none is a 400 and changes nothing', async () => {
      const session = await t.server.app.admin.inject({
        method: 'POST',
        url: '/v1/session',
        payload: { token: t.server.identity.adminToken },
      });
      assert.equal(session.statusCode, 201);
      const cookie = String(session.headers['set-cookie']).split(';')[0]!;
      const csrf = session.json().csrf as string;
      const token = (await t.admin('POST', '/v1/tokens', {})).json.id as string;
      await createToken(t);
      const ledgerSize = async () =>
        (await t.admin('GET', '/v1/ledger/entries?start=0&end=1')).json.size as number;
      const sizeBefore = await ledgerSize();

      const none = routes.filter(
        (r) => MUTATING.has(r.method) && r.operation.requestBody?.required === false,
      );
      for (const route of none) {
        const url = route.path
          .replace('{id}', route.path.startsWith('/v1/tokens') ? token : agent.nodeId)
          .replace('{name}', 'admin');
        for (const payload of ['{"x":1}', '[]', '"rotate"', '{"force":true}']) {
          const res = await t.server.app.admin.inject({
            method: route.method.toUpperCase() as 'POST',
            url,
            payload,
            headers: {
              'content-type': 'application/json',
              ...(route.path === '/v1/session'
                ? { cookie, 'x-muster-csrf': csrf }
                : { authorization: `Bearer ${t.server.identity.adminToken}` }),
            },
          });
          assert.equal(res.statusCode, 400, `${route.method} ${route.path} ${payload}: ${res.body}`);
          assert.equal(res.json().code, 'invalid_request');
          if (payload.startsWith('{')) assert.match(res.json().detail, /takes no body/);
        }
        // A body in no content type at all (a bare `curl -d`) is not read either.
        const bare = await t.server.app.admin.inject({
          method: route.method.toUpperCase() as 'POST',
          url,
          body: Buffer.from('x=1'),
          headers: { authorization: `Bearer ${t.server.identity.adminToken}` },
        });
        assert.equal(
          bare.statusCode,
          415,
          `${route.method} ${route.path} without a content type: ${bare.body}`,
        );
      }
      assert.equal(await ledgerSize(), sizeBefore, 'no decision was taken');
      assert.equal((await t.admin('GET', '/v1/ca')).json.rotation, null, 'no CA rotation started');
      const node = (await t.admin('GET', `/v1/nodes/${agent.nodeId}`)).json;
      assert.equal(node.decommissionedAt, null);
      assert.equal(node.cert.rotationRequestedAt, null);
      const tokens = (await t.admin('GET', '/v1/tokens')).json.items as Array<{ id: string; state: string }>;
      assert.equal(tokens.find((item) => item.id === token)?.state, 'active');
      const still = await t.server.app.admin.inject({
        method: 'GET',
        url: '/v1/session',
        headers: { cookie },
      });
      assert.equal(still.statusCode, 200, 'the session was not ended');

      // With no body, or {}, each does what it says.
      assert.equal((await t.admin('DELETE', `/v1/tokens/${token}`)).status, 204);
      assert.equal((await t.admin('POST', `/v1/nodes/${agent.nodeId}/rotate`, {})).status, 202);
      assert.ok((await ledgerSize()) > sizeBefore);
    });
  });
}
