import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer } from '../testing/harness.js';

const CHECKED_IN = new URL('../../../../docs/openapi.json', import.meta.url);

let t: TestServer;
before(async () => {
  t = await startTestServer('sqlite');
});
after(async () => {
  await t.close();
});

test('GET /openapi.json describes every route from the schemas that validate them, and matches docs/openapi.json', async () => {
  const res = await t.server.app.admin.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(res.statusCode, 200);
  const doc = res.json();
  assert.equal(doc.openapi, '3.1.0');
  for (const [path, method] of [
    ['/v1/enroll', 'post'],
    ['/v1/agent/heartbeat', 'post'],
    ['/v1/tokens', 'post'],
    ['/v1/tokens', 'get'],
    ['/v1/tokens/{id}', 'delete'],
    ['/v1/nodes', 'get'],
    ['/v1/nodes/{id}', 'get'],
    ['/v1/nodes/{id}', 'delete'],
    ['/healthz', 'get'],
    ['/readyz', 'get'],
  ] as const) {
    assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is described`);
  }
  assert.equal(
    doc.paths['/v1/agent/heartbeat'].post.requestBody.content['application/json'].schema.properties.cpuPct
      .maximum,
    100,
  );

  // Signing in is how a credential is got; the console's cookie is how its session is used.
  assert.deepEqual(doc.paths['/v1/session'].post.security, []);
  assert.deepEqual(doc.paths['/v1/session'].delete.security, [{ consoleSession: [] }]);
  assert.deepEqual(doc.paths['/v1/tokens'].post.security, [
    { adminToken: [] },
    { consoleSession: [] },
    { userCertificate: [] },
  ]);
  assert.deepEqual(doc.paths['/v1/login'].post.security, []);
  assert.deepEqual(doc.paths['/v1/enroll'].post.security, []);

  const text = `${JSON.stringify(doc, null, 2)}\n`;
  if (process.env.MUSTER_UPDATE_OPENAPI === '1') writeFileSync(CHECKED_IN, text);
  assert.equal(
    readFileSync(CHECKED_IN, 'utf8'),
    text,
    'docs/openapi.json is stale: run MUSTER_UPDATE_OPENAPI=1 npm test -- openapi',
  );
});
