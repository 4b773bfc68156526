import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { type HttpsResult, startTestServer, type TestServer } from '../testing/harness.js';
import { assertProblem } from '../testing/problems.js';

/**
 * Real HTTP on kept-alive connections from a chosen loopback address (Linux answers all of
 * 127/8), so the server sees the source address a remote client would give it.
 */
function client(from: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 8, localAddress: from });
  const send = (url: string, method: string, headers: Record<string, string>, body?: unknown) =>
    new Promise<HttpsResult>((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        url,
        {
          method,
          agent,
          headers: {
            ...headers,
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              json: text ? JSON.parse(text) : undefined,
              body: text,
              headers: res.headers,
            });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  return { send, close: () => agent.destroy() };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('refused admin credentials are throttled per source address', () => {
  let t: TestServer;
  let attacker: ReturnType<typeof client>;
  let neighbour: ReturnType<typeof client>;
  before(async () => {
    // The clock stands still unless a test moves it, so no bucket refills while one runs.
    t = await startTestServer('sqlite');
    attacker = client('127.0.0.1');
    neighbour = client('127.0.0.2');
  });
  after(async () => {
    attacker.close();
    neighbour.close();
    await t.close();
  });
  const nodes = (c: ReturnType<typeof client>, headers: Record<string, string>) =>
    c.send(`${t.server.adminUrl}/v1/nodes`, 'GET', headers);
  const signIn = (c: ReturnType<typeof client>, body: unknown) =>
    c.send(`${t.server.adminUrl}/v1/session`, 'POST', {}, body);

  test('1,500 wrong tokens: 401s for the first 30, then 429s; the valid token still answers 200 throughout', async () => {
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 150; batch++) {
      const wrong = Array.from({ length: 10 }, (_, i) => nodes(attacker, bearer(`mat_wrong-${batch}-${i}`)));
      const answers = await Promise.all(wrong);
      for (const res of answers) statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (batch % 15 === 14) {
        const good = await nodes(attacker, bearer(t.server.identity.adminToken));
        assert.equal(good.status, 200, `the valid token after ${(batch + 1) * 10} wrong ones: ${good.body}`);
      }
    }
    assert.deepEqual(Object.fromEntries(statuses), { 401: 30, 429: 1470 });

    const limited = await nodes(attacker, bearer('mat_one-more'));
    const problem = assertProblem(limited, 429, 'rate_limited');
    assert.match(problem.detail, /too many refused credentials from this address; wait \d+ s/);
    assert.equal(limited.headers['retry-after'], '2');
    // Any credential presented and refused counts, whatever its scheme.
    assert.equal((await nodes(attacker, { authorization: 'Basic x' })).status, 429);
  });

  test('a request with no credential is not counted, and another address has its own budget', async () => {
    for (let i = 0; i < 40; i++) assertProblem(await nodes(attacker, {}), 401, 'unauthorized');
    assertProblem(await nodes(neighbour, bearer('mat_wrong')), 401, 'unauthorized');
  });

  test('a forged console session counts like a wrong token', async () => {
    const forged = await nodes(attacker, { cookie: `muster_session=${'A'.repeat(43)}` });
    assertProblem(forged, 429, 'rate_limited');
  });

  test('POST /v1/session with wrong codes and tokens turns to 429; the admin token and a real link still sign in', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await signIn(neighbour, i % 2 ? { code: `wrong-code-${i}` } : { token: `mat_wrong-${i}` });
      statuses.push(res.status);
    }
    // 29 left after the one wrong token of the test before, then 429s.
    assert.deepEqual([...new Set(statuses)], [401, 429]);
    assert.equal(statuses.filter((s) => s === 401).length, 29);
    assert.equal(statuses.at(-1), 429);
    assert.equal((await signIn(neighbour, { token: t.server.identity.adminToken })).status, 201);
    const code = /#code=(.+)$/.exec(await t.server.signInLink())![1]!;
    assert.equal((await signIn(neighbour, { code })).status, 201);
    const again = await signIn(neighbour, { code });
    assertProblem(again, 429, 'rate_limited');
  });

  test('the budget refills with time: a minute later a wrong token is a 401 again', async () => {
    t.clock.advance(60_000);
    assertProblem(await nodes(attacker, bearer('mat_wrong-later')), 401, 'unauthorized');
  });
});

describe('the refused-credential budget is a setting', () => {
  test('--auth-failure-rate 5 gives 429 from the sixth wrong token', async () => {
    const t = await startTestServer('sqlite', { settings: { 'auth-failure-rate': '5' } });
    const c = client('127.0.0.3');
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++)
        statuses.push((await c.send(`${t.server.adminUrl}/v1/nodes`, 'GET', bearer(`mat_w${i}`))).status);
      assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429]);
    } finally {
      c.close();
      await t.close();
    }
  });
});
