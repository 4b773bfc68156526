import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startReplicas, startTestServer, type TestServer } from '../../testing/harness.js';
import { assertProblem as assertProblemResult } from '../../testing/problems.js';
import { SESSION_LIFETIME_MS, SIGNIN_CODE_LIFETIME_MS } from './sessions.js';

type Plane = TestServer['server']['app']['admin'];
type Injected = Awaited<ReturnType<Plane['inject']>>;

function assertProblem(res: Injected, status: number) {
  return assertProblemResult(
    { status: res.statusCode, json: JSON.parse(res.body), body: res.body, headers: res.headers as never },
    status,
  );
}

/** Signs in on a plane with the admin token; returns the cookie header and the CSRF token. */
async function signIn(admin: Plane, token: string): Promise<{ cookie: string; csrf: string }> {
  const res = await admin.inject({ method: 'POST', url: '/v1/session', payload: { token } });
  assert.equal(res.statusCode, 201, res.body);
  const setCookie = String(res.headers['set-cookie']);
  return { cookie: setCookie.split(';')[0]!, csrf: res.json().csrf };
}

describe('the console is served with a strict policy', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('sqlite');
  });
  after(async () => {
    await t.close();
  });

  test('every console page is the same index, never cached, under a CSP that allows no inline script', async () => {
    for (const url of ['/', '/signin', '/nodes', '/nodes/some-id', '/events', '/tokens', '/ledger']) {
      const res = await t.server.app.admin.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.equal(res.headers['cache-control'], 'no-store');
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.doesNotMatch(res.body, /<script>(?!<\/script>)/, 'no inline script in the index');
    }
  });

  test('hashed assets are cached for a year and gzipped when asked; an unknown one is a 404', async () => {
    const index = await t.server.app.admin.inject({ method: 'GET', url: '/' });
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(index.body)?.[1];
    assert.ok(script, 'the index loads a hashed script');
    const res = await t.server.app.admin.inject({
      method: 'GET',
      url: script,
      headers: { 'accept-encoding': 'gzip' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.match(String(res.headers['content-type']), /^text\/javascript/);
    const missing = await t.server.app.admin.inject({ method: 'GET', url: '/assets/nope.js' });
    assert.equal(missing.statusCode, 404);
  });
});

for (const dialect of dialects()) {
  describe(`console sessions (${dialect})`, () => {
    let t: TestServer;
    let admin: Plane;
    before(async () => {
      t = await startTestServer(dialect);
      admin = t.server.app.admin;
    });
    after(async () => {
      await t.close();
    });

    test('a wrong admin token gets no session; the right one gets an httpOnly, SameSite=Strict cookie', async () => {
      const bad = await admin.inject({ method: 'POST', url: '/v1/session', payload: { token: 'nope' } });
      await assertProblem(bad, 401);
      assert.equal(bad.headers['set-cookie'], undefined);
      const res = await admin.inject({
        method: 'POST',
        url: '/v1/session',
        payload: { token: t.server.identity.adminToken },
      });
      assert.equal(res.statusCode, 201);
      const cookie = String(res.headers['set-cookie']);
      assert.match(cookie, /^muster_session=[A-Za-z0-9_-]{43};/);
      assert.match(cookie, /; HttpOnly/);
      assert.match(cookie, /; SameSite=Strict/);
      assert.doesNotMatch(cookie, /Secure/, 'plain HTTP on loopback: a Secure cookie would never come back');
      // Only a hash is stored: the cookie's secret is nowhere in the store.
      const secret = cookie.split(';')[0]!.split('=')[1]!;
      const rows = await t.server.store.db.selectFrom('console_sessions').selectAll().execute();
      assert.ok(rows.length >= 1);
      assert.ok(rows.every((r) => r.id_hash !== secret));
    });

    test('the cookie reads the API; a forged or ended session is a 401', async () => {
      const { cookie, csrf } = await signIn(admin, t.server.identity.adminToken);
      const nodes = await admin.inject({ method: 'GET', url: '/v1/nodes', headers: { cookie } });
      assert.equal(nodes.statusCode, 200);
      const session = await admin.inject({ method: 'GET', url: '/v1/session', headers: { cookie } });
      assert.equal(session.json().csrf, csrf);

      const forged = await admin.inject({
        method: 'GET',
        url: '/v1/nodes',
        headers: { cookie: `muster_session=${'A'.repeat(43)}` },
      });
      await assertProblem(forged, 401);

      const out = await admin.inject({
        method: 'DELETE',
        url: '/v1/session',
        headers: { cookie, 'x-muster-csrf': csrf },
      });
      assert.equal(out.statusCode, 204);
      assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
      await assertProblem(await admin.inject({ method: 'GET', url: '/v1/nodes', headers: { cookie } }), 401);
      await assertProblem(
        await admin.inject({ method: 'GET', url: '/v1/session', headers: { cookie } }),
        401,
      );
    });

    test('a change made with the cookie needs the CSRF token and a same-origin request', async () => {
      const { cookie, csrf } = await signIn(admin, t.server.identity.adminToken);
      const post = (headers: Record<string, string>) =>
        admin.inject({ method: 'POST', url: '/v1/tokens', headers: { cookie, ...headers }, payload: {} });
      await assertProblem(await post({}), 403);
      await assertProblem(await post({ 'x-muster-csrf': 'guessed' }), 403);
      await assertProblem(await post({ 'x-muster-csrf': csrf, origin: 'https://evil.example' }), 403);
      await assertProblem(await post({ 'x-muster-csrf': csrf, 'sec-fetch-site': 'cross-site' }), 403);
      const ok = await post({ 'x-muster-csrf': csrf, origin: 'http://localhost:80', host: 'localhost:80' });
      assert.equal(ok.statusCode, 201, ok.body);
      // The decision names the user signed in to the console as the actor.
      const tokens = await t.admin('GET', '/v1/events?kind=token.created&limit=1');
      assert.equal(tokens.json.items[0].actor, 'user:admin');
    });

    test('a session ends at its lifetime', async () => {
      const { cookie } = await signIn(admin, t.server.identity.adminToken);
      t.clock.advance(SESSION_LIFETIME_MS + 1000);
      await assertProblem(await admin.inject({ method: 'GET', url: '/v1/nodes', headers: { cookie } }), 401);
    });

    test('a sign-in link works once and not after it expires', async () => {
      const link = await t.server.signInLink();
      const code = /#code=([A-Za-z0-9_-]+)$/.exec(link)?.[1];
      assert.ok(code, link);
      assert.ok(link.startsWith(t.server.adminUrl));
      const first = await admin.inject({ method: 'POST', url: '/v1/session', payload: { code } });
      assert.equal(first.statusCode, 201);
      await assertProblem(await admin.inject({ method: 'POST', url: '/v1/session', payload: { code } }), 401);

      const late = /#code=(.+)$/.exec(await t.server.signInLink())![1]!;
      t.clock.advance(SIGNIN_CODE_LIFETIME_MS + 1000);
      await assertProblem(
        await admin.inject({ method: 'POST', url: '/v1/session', payload: { code: late } }),
        401,
      );
    });

    test('GET /v1/fleet gives the fleet bar its figures', async () => {
      const res = await t.admin('GET', '/v1/fleet');
      assert.equal(res.status, 200);
      assert.equal(typeof res.json.channelsHeld, 'number');
      assert.equal(typeof res.json.ledger.size, 'number');
    });
  });

  describe(`console sessions across replicas (${dialect})`, () => {
    test('a session made on one replica works on the other and ends on both', async () => {
      const { a, b, close } = await startReplicas(dialect);
      try {
        const { cookie, csrf } = await signIn(a.server.app.admin, a.server.identity.adminToken);
        assert.equal(
          (await b.server.app.admin.inject({ method: 'GET', url: '/v1/nodes', headers: { cookie } }))
            .statusCode,
          200,
        );
        const out = await b.server.app.admin.inject({
          method: 'DELETE',
          url: '/v1/session',
          headers: { cookie, 'x-muster-csrf': csrf },
        });
        assert.equal(out.statusCode, 204);
        await assertProblem(
          await a.server.app.admin.inject({ method: 'GET', url: '/v1/nodes', headers: { cookie } }),
          401,
        );
      } finally {
        await close();
      }
    });
  });
}
