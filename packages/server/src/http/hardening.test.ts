import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import {
  dialects,
  enrollAgent,
  type HttpsResult,
  httpJson,
  httpsJson,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../testing/harness.js';
import { assertProblem } from '../testing/problems.js';
import { MAX_BODY_BYTES } from './json.js';

const nested = (depth: number) => `{"uses":${'['.repeat(depth)}${']'.repeat(depth)}}`;

/** A JSON body of exactly `bytes` bytes. */
function bodyOfSize(bytes: number): string {
  const frame = '{"uses":2,"pad":""}';
  return frame.replace('""', `"${'x'.repeat(bytes - frame.length)}"`);
}

for (const dialect of dialects()) {
  describe(`HTTP hardening (${dialect})`, () => {
    let t: TestServer;
    let agent: TestAgent;
    before(async () => {
      t = await startTestServer(dialect);
      agent = await enrollAgent(t, { name: 'hard-1' });
      assert.equal((await agent.heartbeat()).status, 202);
    });
    after(async () => {
      agent.agent.destroy();
      await t.close();
    });

    /** The real admin listener, as the CLI and console reach it. */
    const admin = (method: string, path: string, opts: Parameters<typeof httpJson>[1] = {}) =>
      httpJson(`${t.server.adminUrl}${path}`, { method, ...opts });
    const withToken = (token: string) => ({ authorization: `Bearer ${token}` });
    const adminToken = () => t.server.identity.adminToken;
    /** The agent plane, without a client certificate: enrollment. */
    const enroll = (opts: Parameters<typeof httpsJson>[1]) =>
      httpsJson(`${t.server.agentUrl}/v1/enroll`, { ca: t.server.identity.ca.pem, ...opts });
    const tokenCount = async () => (await t.admin('GET', '/v1/tokens')).json.items.length as number;

    describe('admin authentication', () => {
      test('every admin route refuses a request without a token with a 401 problem', async () => {
        const before = await tokenCount();
        const routes: Array<[string, string]> = [
          ['GET', '/v1/nodes'],
          ['GET', `/v1/nodes/${agent.nodeId}`],
          ['DELETE', `/v1/nodes/${agent.nodeId}`],
          ['GET', '/v1/tokens'],
          ['POST', '/v1/tokens'],
          ['DELETE', '/v1/tokens/tok_0000000000000000'],
        ];
        for (const [method, path] of routes) {
          const res = await admin(method, path, method === 'POST' ? { body: { uses: 5 } } : {});
          assertProblem(res, 401, 'unauthorized');
        }
        assert.equal(await tokenCount(), before, 'nothing was created');
        assert.equal(
          (await t.admin('GET', `/v1/nodes/${agent.nodeId}`)).json.status,
          'ok',
          'nothing was removed',
        );
      });

      test('a wrong token, of the same or another length, or in another scheme, is a 401', async () => {
        const real = adminToken();
        const wrong = [
          `mat_${'A'.repeat(real.length - 4)}`,
          'short',
          real.repeat(3),
          `${real.slice(0, -1)}${real.endsWith('A') ? 'B' : 'A'}`,
        ];
        const answers: HttpsResult[] = [];
        for (const token of wrong)
          answers.push(await admin('GET', '/v1/nodes', { headers: withToken(token) }));
        answers.push(
          await admin('GET', '/v1/nodes', { headers: { authorization: `Basic ${btoa(`admin:${real}`)}` } }),
        );
        answers.push(await admin('GET', '/v1/nodes', { headers: { authorization: real } }));
        answers.push(
          await admin('GET', '/v1/nodes', { headers: { authorization: `Bearer ${real} ${real}` } }),
        );
        const details = new Set(answers.map((res) => assertProblem(res, 401, 'unauthorized').detail));
        assert.equal(details.size, 1, 'every refusal reads the same');
        assert.ok(!answers.some((res) => res.body.includes(real)));
        assert.equal((await admin('GET', '/v1/nodes', { headers: withToken(real) })).status, 200);
      });

      test('tokens that share a prefix with the real one, or extend it, are refused', async () => {
        const real = adminToken();
        const candidates = [
          real.slice(0, 1),
          real.slice(0, 4),
          real.slice(0, real.length / 2),
          real.slice(0, -1),
          `${real}x`,
          `${real}${real}`,
        ];
        for (const token of candidates) {
          assert.ok(real.startsWith(token) || token.startsWith(real));
          assertProblem(await admin('GET', '/v1/tokens', { headers: withToken(token) }), 401, 'unauthorized');
        }
      });

      test('health needs no token and says nothing secret', async () => {
        const res = await admin('GET', '/healthz');
        assert.equal(res.status, 200);
        assert.deepEqual(res.json, { status: 'ok' });
        assert.equal((await admin('GET', '/readyz')).status, 200);
      });
    });

    describe('request bodies', () => {
      test('a body over 1 MiB is a 413 on both planes, with or without a content-length', async () => {
        const over = bodyOfSize(MAX_BODY_BYTES + 1);
        const headers = withToken(adminToken());
        assertProblem(await admin('POST', '/v1/tokens', { rawBody: over, headers }), 413, 'body_too_large');
        assertProblem(
          await admin('POST', '/v1/tokens', { rawBody: over, headers, chunked: true }),
          413,
          'body_too_large',
        );
        assertProblem(await enroll({ rawBody: over }), 413, 'body_too_large');
        assertProblem(await enroll({ rawBody: over, chunked: true }), 413, 'body_too_large');
        // Exactly 1 MiB is read and judged on its content instead.
        const limit = await admin('POST', '/v1/tokens', { rawBody: bodyOfSize(MAX_BODY_BYTES), headers });
        assertProblem(limit, 400, 'invalid_request');
      });

      test('malformed JSON is a 400 on both planes', async () => {
        const headers = withToken(adminToken());
        for (const rawBody of ['{', '{"uses":}', "{'uses':2}", '{"uses":2}}', '\u0000']) {
          assertProblem(await admin('POST', '/v1/tokens', { rawBody, headers }), 400, 'malformed_json');
          assertProblem(await enroll({ rawBody }), 400, 'malformed_json');
        }
        assertProblem(
          await httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, {
            rawBody: '{"seq":',
            agent: agent.agent,
          }),
          400,
          'malformed_json',
        );
      });

      test('JSON nested 10,000 deep is a 400 on both planes', async () => {
        const rawBody = nested(10_000);
        assertProblem(
          await admin('POST', '/v1/tokens', { rawBody, headers: withToken(adminToken()) }),
          400,
          'malformed_json',
        );
        assertProblem(await enroll({ rawBody }), 400, 'malformed_json');
      });

      test('a body that is not JSON, or none where one is needed, is refused with a problem', async () => {
        const headers = withToken(adminToken());
        assertProblem(
          await admin('POST', '/v1/tokens', {
            rawBody: 'uses=2',
            headers: { ...headers, 'content-type': 'text/plain' },
          }),
          415,
          'unsupported_media_type',
        );
        assertProblem(await admin('POST', '/v1/tokens', { rawBody: '', headers }), 400);
        assertProblem(await enroll({ rawBody: '' }), 400);
      });

      test('__proto__ and constructor.prototype keys do nothing', async () => {
        const headers = withToken(adminToken());
        for (const rawBody of [
          '{"__proto__": {"isAdmin": true, "uses": 9}, "uses": 2}',
          '{"constructor": {"prototype": {"isAdmin": true}}, "uses": 2}',
        ]) {
          const res = await admin('POST', '/v1/tokens', { rawBody, headers });
          assert.equal(res.status, 201, res.body);
          assert.equal(res.json.usesTotal, 2);
          assert.ok(!res.body.includes('isAdmin'));
        }
        const hb = JSON.stringify(sampleHeartbeat(50)).replace(
          '{',
          '{"__proto__":{"cpuPct":99,"polluted":1},',
        );
        assert.equal(
          (await httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, { rawBody: hb, agent: agent.agent }))
            .status,
          202,
        );
        const shown = await t.admin('GET', `/v1/nodes/${agent.nodeId}`);
        assert.equal(shown.json.latest.seq, 50);
        assert.equal(shown.json.latest.cpuPct, 12.5);
        assert.ok(!shown.body.includes('polluted'));
        assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
        assert.deepEqual(Object.keys(Object.prototype), []);
      });
    });

    test('unknown routes are 404 problems on both planes', async () => {
      assertProblem(await admin('GET', '/v1/nope', { headers: withToken(adminToken()) }), 404, 'not_found');
      assertProblem(
        await httpsJson(`${t.server.agentUrl}/v1/nope`, { ca: t.server.identity.ca.pem }),
        404,
        'not_found',
      );
    });
  });

  describe(`a failing store (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test('becomes a 500 problem with a request id and no SQL, table or file name', async () => {
      await sql`drop table tokens`.execute(t.server.store.db);
      for (const [method, body] of [
        ['GET', undefined],
        ['POST', { uses: 1 }],
      ] as const) {
        const res = await httpJson(`${t.server.adminUrl}/v1/tokens`, {
          method,
          ...(body ? { body } : {}),
          headers: { authorization: `Bearer ${t.server.identity.adminToken}` },
        });
        const problem = assertProblem(res, 500, 'internal');
        assert.ok(!res.body.includes('tokens'), res.body);
        assert.match(problem.detail, /request id/);
      }
    });
  });
}
