import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  decisionsAbout,
  dialects,
  type HttpsResult,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';
import { assertProblem } from '../../testing/problems.js';
import { SIGNIN_CODE_LIFETIME_MS } from './sessions.js';
import { readSsoSettings } from './sso-config.js';

/** Calls the admin plane with a console session's cookie (and CSRF token on a change). */
async function withSession(
  t: TestServer,
  s: { cookie: string; csrf: string },
  method: string,
  url: string,
  body?: unknown,
): Promise<HttpsResult> {
  const res = await t.server.app.admin.inject({
    method: method as 'GET',
    url,
    headers: { cookie: s.cookie, ...(method === 'GET' ? {} : { 'x-muster-csrf': s.csrf }) },
    ...(body === undefined ? {} : { payload: body as object }),
  });
  const json = res.body ? JSON.parse(res.body) : undefined;
  return { status: res.statusCode, json, body: res.body, headers: res.headers as HttpsResult['headers'] };
}

/** Redeems a sign-in code as the console does; the session's cookie and CSRF token, or the refusal. */
async function redeem(t: TestServer, code: string) {
  const res = await t.server.app.admin.inject({ method: 'POST', url: '/v1/session', payload: { code } });
  if (res.statusCode !== 201) return { status: res.statusCode, json: res.json() };
  return {
    status: 201,
    session: { cookie: String(res.headers['set-cookie']).split(';')[0]!, csrf: res.json().csrf as string },
  };
}

for (const dialect of dialects()) {
  describe(`muster user link: a one-time console sign-in link for one user (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
      assert.equal((await t.admin('POST', '/v1/users', { name: 'bob', role: 'viewer' })).status, 201);
    });
    after(async () => {
      await t.close();
    });

    test('an admin makes a link for bob; it signs in once, as bob with his role, and is a ledger decision', async () => {
      const made = await t.admin('POST', '/v1/users/bob/links', {});
      assert.equal(made.status, 201, made.body);
      assert.equal(made.json.path, `/#code=${made.json.code}`);
      const decision = (await decisionsAbout(t, 'user:bob')).find((d) => d.kind === 'user.link_issued');
      assert.ok(decision, 'the link is a ledger decision about bob');
      assert.equal(decision.actor, 'user:admin');
      assert.equal(decision.data.expiresAt, made.json.expiresAt);
      assert.equal(decision.data.credential, 'bootstrap', 'it names the credential that asked');

      const first = await redeem(t, made.json.code);
      assert.equal(first.status, 201);
      const session = first.session!;
      assert.equal((await withSession(t, session, 'GET', '/v1/nodes')).status, 200);
      const forged = assertProblem(await withSession(t, session, 'POST', '/v1/tokens', {}), 403, 'forbidden');
      assert.equal(forged.detail, 'role viewer may not create tokens');
      const events = await t.admin('GET', '/v1/events?kind=access.denied&limit=1');
      assert.equal(events.json.items[0].actor, 'user:bob');

      const again = await redeem(t, made.json.code);
      assert.equal(again.status, 401, 'a link works once');
      assert.match(again.json.detail, /links work once, for 15 minutes/);

      assert.equal((await t.admin('POST', '/v1/users/bob/disable')).status, 200);
      assertProblem(await withSession(t, session, 'GET', '/v1/nodes'), 401);
      assert.equal((await t.admin('POST', '/v1/users/bob/enable')).status, 200);
    });

    test('a link expires after 15 minutes unused', async () => {
      const made = await t.admin('POST', '/v1/users/bob/links', {});
      t.clock.advance(SIGNIN_CODE_LIFETIME_MS + 1000);
      assert.equal((await redeem(t, made.json.code)).status, 401);
    });

    test('no link for a disabled or unknown user', async () => {
      assert.equal((await t.admin('POST', '/v1/users', { name: 'gone', role: 'viewer' })).status, 201);
      assert.equal((await t.admin('POST', '/v1/users/gone/disable')).status, 200);
      const disabled = assertProblem(await t.admin('POST', '/v1/users/gone/links', {}), 409, 'user_disabled');
      assert.match(disabled.detail, /user gone is disabled/);
      assertProblem(await t.admin('POST', '/v1/users/nobody/links', {}), 404, 'no_user');
    });

    test('an operator may not make links; a user manager may not lend a role above their own', async () => {
      const operator = await userToken(t, 'olga', 'operator');
      const refused = assertProblem(
        await as(t, operator.secret, 'POST', '/v1/users/bob/links', {}),
        403,
        'forbidden',
      );
      assert.equal(refused.detail, 'role operator may not update users');
      const role = {
        name: 'user-manager',
        allow: [{ verbs: ['read', 'create', 'update'], resources: ['users', 'nodes'] }],
      };
      assert.equal((await t.admin('POST', '/v1/roles', role)).status, 200);
      const manager = await userToken(t, 'umberto', 'user-manager');
      const above = assertProblem(
        await as(t, manager.secret, 'POST', '/v1/users/admin/links', {}),
        403,
        'forbidden',
      );
      assert.equal(above.detail, 'role user-manager may not make a sign-in link for role admin');
      assert.equal(typeof (above as { eventId?: number }).eventId, 'number');
      // A custom role is compared by name: the manager may lend only their own role.
      assert.equal(
        (await t.admin('POST', '/v1/users', { name: 'ursula', role: 'user-manager' })).status,
        201,
      );
      assert.equal((await as(t, manager.secret, 'POST', '/v1/users/ursula/links', {})).status, 201);
    });

    test('an admin in the console makes links for others, not for themselves', async () => {
      const own = await t.admin('POST', '/v1/console/links', {});
      const admin = (await redeem(t, own.json.code)).session!;
      const self = assertProblem(await withSession(t, admin, 'POST', '/v1/users/admin/links', {}), 403);
      assert.match(self.detail, /not from the console/);
      assert.equal((await withSession(t, admin, 'POST', '/v1/users/bob/links', {})).status, 201);
    });
  });

  describe(`a user's e-mail, which single sign-on matches (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test('added lowercased, set and removed as ledger decisions; one e-mail names one user', async () => {
      const added = await t.admin('POST', '/v1/users', {
        name: 'carol',
        role: 'viewer',
        email: 'Carol@Example.com',
      });
      assert.equal(added.status, 201, added.body);
      assert.equal(added.json.email, 'carol@example.com');
      const taken = await t.admin('POST', '/v1/users', {
        name: 'carl',
        role: 'viewer',
        email: 'CAROL@example.com',
      });
      assert.match(
        assertProblem(taken, 409, 'email_taken').detail,
        /user carol already has the e-mail carol@example\.com/,
      );
      assert.equal((await t.admin('GET', '/v1/users/carl')).status, 404, 'nothing half-written');

      assert.equal((await t.admin('POST', '/v1/users', { name: 'carl', role: 'viewer' })).status, 201);
      assertProblem(
        await t.admin('POST', '/v1/users/carl/email', { email: 'carol@example.com' }),
        409,
        'email_taken',
      );
      const set = await t.admin('POST', '/v1/users/carl/email', { email: 'carl@example.com' });
      assert.equal(set.json.email, 'carl@example.com');
      const removed = await t.admin('POST', '/v1/users/carl/email', { email: null });
      assert.equal(removed.json.email, null);
      const kinds = (await decisionsAbout(t, 'user:carl')).map((d) => [d.kind, d.data.to]);
      assert.deepEqual(kinds, [
        ['user.added', undefined],
        ['user.login_code_issued', undefined],
        ['user.email_changed', 'carl@example.com'],
        ['user.email_changed', null],
      ]);
      assertProblem(await t.admin('POST', '/v1/users/carl/email', { email: 'not an e-mail' }), 400);
      assertProblem(
        await t.admin('POST', '/v1/users/nobody/email', { email: 'x@example.com' }),
        404,
        'no_user',
      );
    });
  });

  describe(`single sign-on's routes (${dialect})`, () => {
    test('without --oidc-issuer the sign-in page offers no SSO and starting one is a 404', async () => {
      const t = await startTestServer(dialect);
      try {
        const options = await t.server.app.admin.inject({ method: 'GET', url: '/v1/session/sso' });
        assert.deepEqual(options.json(), { enabled: false, issuer: null });
        const start = await t.server.app.admin.inject({ method: 'POST', url: '/v1/session/sso' });
        assert.equal(start.statusCode, 404);
        assert.equal(start.json().code, 'sso_not_configured');
      } finally {
        await t.close();
      }
    });

    test('an unreachable provider is a 502 naming it; an unknown state is refused with its event', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'muster-sso-'));
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const port = (probe.address() as { port: number }).port;
      await new Promise((resolve) => probe.close(resolve));
      writeFileSync(join(dir, 'secret'), 's3cret\n');
      const issuer = `http://127.0.0.1:${port}/`;
      const t = await startTestServer(dialect, {
        settings: {
          'oidc-issuer': issuer,
          'oidc-client-id': 'muster',
          'oidc-client-secret-file': join(dir, 'secret'),
        },
      });
      try {
        const options = await t.server.app.admin.inject({ method: 'GET', url: '/v1/session/sso' });
        assert.deepEqual(options.json(), { enabled: true, issuer });
        const start = await t.server.app.admin.inject({ method: 'POST', url: '/v1/session/sso' });
        assert.equal(start.statusCode, 502);
        assert.equal(start.json().code, 'sso_unavailable');
        assert.match(start.json().detail, new RegExp(`the identity provider ${issuer} could not be reached`));
        const forged = await t.server.app.admin.inject({
          method: 'POST',
          url: '/v1/session/sso/callback',
          payload: { query: 'code=abc&state=made-up' },
        });
        assert.equal(forged.statusCode, 401);
        assert.equal(forged.json().code, 'sso_refused');
        assert.match(forged.json().detail, /this sign-in is unknown or long expired; start again/);
        const events = await t.admin('GET', '/v1/events?kind=access.denied&limit=1');
        assert.equal(events.json.items[0].id, forged.json().eventId);
        assert.equal(events.json.items[0].data.reason, 'unknown_state');
        const crossSite = await t.server.app.admin.inject({
          method: 'POST',
          url: '/v1/session/sso',
          headers: { 'sec-fetch-site': 'cross-site' },
        });
        assert.equal(crossSite.statusCode, 403, 'a page elsewhere cannot start a sign-in');
        // Each start is a row in the store: one source may start 20 at once, then 1 a second.
        const codes: number[] = [];
        for (let i = 0; i < 20; i++)
          codes.push(
            (await t.server.app.admin.inject({ method: 'POST', url: '/v1/session/sso' })).statusCode,
          );
        assert.deepEqual(new Set(codes), new Set([502, 429]));
        assert.equal(codes.at(-1), 429);
      } finally {
        await t.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('--oidc-* settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-sso-config-'));
  writeFileSync(join(dir, 'secret'), 'a-secret\n');
  writeFileSync(join(dir, 'empty'), '\n');
  after(() => rmSync(dir, { recursive: true, force: true }));
  const read = (raw: Record<string, string | boolean>, listenHost = '127.0.0.1', behindProxy = false) => {
    const problems: string[] = [];
    const settings = readSsoSettings(raw, dir, problems, { listenHost, behindProxy });
    return { settings, problems };
  };
  const full = {
    'oidc-issuer': 'https://id.example.com/realms/ops',
    'oidc-client-id': 'muster',
    'oidc-client-secret-file': 'secret',
  };

  test('all three together, the secret read from its file', () => {
    const { settings, problems } = read(full);
    assert.deepEqual(problems, []);
    assert.equal(settings?.clientSecret, 'a-secret');
    assert.equal(read({}).settings, undefined);
  });

  test('each bad value is named', () => {
    assert.deepEqual(read({ 'oidc-issuer': 'https://id.example.com' }).problems, [
      '--oidc-issuer, --oidc-client-id and --oidc-client-secret-file go together',
    ]);
    assert.match(
      read({ ...full, 'oidc-issuer': 'http://id.example.com' }).problems[0]!,
      /http:\/\/ is allowed only on loopback/,
    );
    assert.deepEqual(read({ ...full, 'oidc-issuer': 'http://127.0.0.1:9000' }).problems, []);
    assert.match(
      read({ ...full, 'oidc-client-secret-file': 'missing' }).problems[0]!,
      /cannot read missing \(ENOENT\)/,
    );
    assert.match(read({ ...full, 'oidc-client-secret-file': 'empty' }).problems[0]!, /empty is empty/);
    assert.match(read({ ...full, 'oidc-client-id': 'two words' }).problems[0]!, /--oidc-client-id/);
    assert.match(
      read({ ...full, 'oidc-redirect-url': 'https://muster.example.com/callback' }).problems[0]!,
      /must end in \/signin\/sso/,
    );
    assert.match(read(full, '0.0.0.0').problems[0]!, /--oidc-redirect-url is needed/);
    assert.match(read(full, '10.0.0.5', true).problems[0]!, /--oidc-redirect-url is needed/);
    const behind = read({ ...full, 'oidc-redirect-url': 'https://muster.example.com/signin/sso' }, '0.0.0.0');
    assert.equal(behind.settings?.redirectUrl, 'https://muster.example.com/signin/sso');
  });
});
