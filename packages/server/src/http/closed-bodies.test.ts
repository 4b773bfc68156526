import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createToken,
  dialects,
  enrollAgent,
  httpsJson,
  postEnroll,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../testing/harness.js';
import { assertProblem } from '../testing/problems.js';

const now = new Date().toISOString();
const command = (fields: Record<string, unknown>) => ({
  command: {
    v: 1,
    id: 'cmd_closed_0001',
    nonce: 'A'.repeat(22),
    issuedAt: now,
    expiresAt: now,
    operator: 'alice',
    target: { all: true },
    action: 'uptime',
    args: {},
    ...fields,
  },
  signature: 'AAAA',
});
const action = (fields: Record<string, unknown> = {}) => ({
  argv: ['uptime'],
  timeoutSec: 5,
  maxOutputBytes: 100,
  ...fields,
});
const policy = (profiles: Record<string, unknown>) => ({
  policy: { version: 2, operators: [], profiles },
  signature: 'AAAA',
});

/** Keys a map's key pattern does not match, each holding what no label may hold. */
const STRAYS: Array<[string, unknown]> = [
  ['Bad Key', { nested: [1, 2, 3] }],
  ['x'.repeat(200), 'v'],
  ['', 'v'],
  ['UPPER', 'v'],
  ['__proto__x', 'v'],
];

for (const dialect of dialects()) {
  describe(`maps and objects refuse keys they do not take (${dialect})`, () => {
    let t: TestServer;
    let agent: TestAgent;
    before(async () => {
      t = await startTestServer(dialect);
      agent = await enrollAgent(t, { name: 'closed-1' });
    });
    after(async () => {
      agent.agent.destroy();
      await t.close();
    });

    const ledgerSize = async () =>
      (await t.admin('GET', '/v1/ledger/entries?start=0&end=1')).json.size as number;
    const bearer = () => ({ authorization: `Bearer ${t.server.identity.adminToken}` });

    test('labels with a key outside the pattern are a 400 on enrollment and on tokens, and nothing is stored', async () => {
      const token = await createToken(t);
      const tokensBefore = (await t.admin('GET', '/v1/tokens')).json.items.length;
      const before = await ledgerSize();
      for (const [key, value] of [...STRAYS, ['big', 'x'.repeat(300_000)] as [string, unknown]]) {
        const labels = { env: 'prod', [key]: value };
        const enroll = assertProblem(await postEnroll(t, { token, labels }), 400, 'invalid_request');
        assert.match(enroll.detail, /^body\.labels/);
        const made = assertProblem(await t.admin('POST', '/v1/tokens', { labels }), 400, 'invalid_request');
        assert.match(made.detail, /^body\.labels/);
      }
      assert.equal((await t.admin('GET', '/v1/tokens')).json.items.length, tokensBefore);
      assert.equal(await ledgerSize(), before, 'nothing was ledgered');
      // The token was not used up: a clean enrollment still works with it.
      assert.equal((await postEnroll(t, { token, labels: { env: 'prod' } })).status, 201);
    });

    test('every other body refuses a stray key, a map key outside its pattern, or a wrong type', async () => {
      const cases: Array<[string, string, unknown, RegExp]> = [
        ['POST', '/v1/commands', command({ target: { labels: { 'Bad Key': { x: 1 } } } }), /target/],
        ['POST', '/v1/commands', command({ args: { 'Bad Arg': 'v' } }), /args/],
        ['POST', '/v1/commands', command({ args: { ok: { nested: true } } }), /args/],
        ['POST', '/v1/commands', { ...command({}), extra: 1 }, /does not take/],
        ['POST', '/v1/policy', policy({ 'Bad Profile': { actions: {} } }), /profiles/],
        ['POST', '/v1/policy', policy({ web: { actions: { 'Bad Action': action() } } }), /actions/],
        [
          'POST',
          '/v1/policy',
          policy({ web: { actions: { up: action({ args: { 'Bad Arg': { pattern: '.*' } } }) } } }),
          /args/,
        ],
        ['POST', '/v1/policy', policy({ web: { actions: {}, extra: 1 } }), /does not take/],
        ['POST', '/v1/operators', { name: 'bob', publicKey: 'ed25519:x', profiles: [], extra: 1 }, /./],
        ['POST', '/v1/events', { kind: 'note', text: 'hi', extra: 1 }, /does not take/],
        ['POST', '/v1/ca/finish', { force: true, extra: 1 }, /does not take/],
        ['POST', '/v1/tokens', { uses: 1, extra: 1 }, /does not take/],
      ];
      const before = await ledgerSize();
      for (const [method, url, body, detail] of cases) {
        const res = await t.server.app.admin.inject({
          method: method as 'POST',
          url,
          payload: body as object,
          headers: bearer(),
        });
        assert.equal(res.statusCode, 400, `${url} ${JSON.stringify(body).slice(0, 120)}: ${res.body}`);
        assert.equal(res.json().code, 'invalid_request');
        assert.match(res.json().detail, detail);
      }
      const session = await t.server.app.admin.inject({
        method: 'POST',
        url: '/v1/session',
        payload: { token: t.server.identity.adminToken, extra: 1 },
      });
      assert.equal(session.statusCode, 400, session.body);
      assert.equal(session.headers['set-cookie'], undefined, 'no session was made');
      assert.equal(await ledgerSize(), before, 'nothing was ledgered');
    });

    test('agent-plane bodies refuse stray keys too', async () => {
      const url = (path: string) => `${t.server.agentUrl}${path}`;
      for (const [path, body] of [
        ['/v1/agent/running', { commandId: 'cmd_closed_0001', extra: 1 }],
        ['/v1/agent/renew', { csr: 'x', extra: 1 }],
      ] as const) {
        const res = await httpsJson(url(path), { body, agent: agent.agent });
        const problem = assertProblem(res, 400, 'invalid_request');
        assert.match(problem.detail, /"extra"/);
      }
    });
  });
}
