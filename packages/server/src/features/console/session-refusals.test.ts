import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { dialects, startTestServer } from '../../testing/harness.js';
import { adminTls, adminTlsRequest } from '../../testing/login.js';
import { assertProblem } from '../../testing/problems.js';

for (const dialect of dialects()) {
  describe(`refused console credentials count against their user (${dialect})`, () => {
    test("a user's dead session, dead token at sign-in and used link spend her budget, whatever the source", async () => {
      const dir = await mkdtemp(join(tmpdir(), 'muster-session-refusals-'));
      const tls = await adminTls(dir);
      const t = await startTestServer(dialect, {
        settings: { 'admin-cert': tls.cert, 'admin-key': tls.key, 'auth-failure-rate': '3' },
      });
      const call = (path: string, opts: Omit<Parameters<typeof adminTlsRequest>[1], 'ca'>) =>
        adminTlsRequest(`${t.server.adminUrl}${path}`, { ca: tls.caPem, ...opts });
      try {
        assert.equal((await t.admin('POST', '/v1/users', { name: 'jo', role: 'viewer' })).status, 201);
        const token = (await t.admin('POST', '/v1/apitokens', { user: 'jo' })).json;
        // A console session signed in with that token, and a link she has already used.
        const signedIn = await call('/v1/session', {
          body: { token: token.secret },
          localAddress: '127.0.0.9',
        });
        assert.equal(signedIn.status, 201, signedIn.body);
        const cookie = String(signedIn.headers['set-cookie']).split(';')[0]!;
        const link = (await t.admin('POST', '/v1/users/jo/links', {})).json.code as string;
        assert.equal(
          (await call('/v1/session', { body: { code: link }, localAddress: '127.0.0.9' })).status,
          201,
        );
        assert.equal(
          (await call('/v1/nodes', { headers: { cookie }, localAddress: '127.0.0.9' })).status,
          200,
        );
        assert.equal((await t.admin('DELETE', `/v1/apitokens/${token.id}`)).status, 204);

        // Each from its own address, so only her budget (3 a minute) is spent.
        assertProblem(
          await call('/v1/nodes', { headers: { cookie }, localAddress: '127.0.0.2' }),
          401,
          'session_ended',
        );
        assertProblem(
          await call('/v1/session', { body: { token: token.secret }, localAddress: '127.0.0.3' }),
          401,
          'bad_credential',
        );
        assertProblem(
          await call('/v1/session', { body: { code: link }, localAddress: '127.0.0.4' }),
          401,
          'bad_credential',
        );
        const limited = assertProblem(
          await call('/v1/session', { body: { code: link }, localAddress: '127.0.0.5' }),
          429,
          'rate_limited',
        );
        assert.match(limited.detail, /for this user/);
        // From that same fresh address, a link nobody was given is a plain 401 (no user to count),
        assertProblem(
          await call('/v1/session', { body: { code: 'x'.repeat(32) }, localAddress: '127.0.0.5' }),
          401,
          'bad_credential',
        );
        // and another user's link still signs her in.
        await t.admin('POST', '/v1/users', { name: 'kim', role: 'viewer' });
        const kims = (await t.admin('POST', '/v1/users/kim/links', {})).json.code as string;
        assert.equal(
          (await call('/v1/session', { body: { code: kims }, localAddress: '127.0.0.5' })).status,
          201,
        );
      } finally {
        await t.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
