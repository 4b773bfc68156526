import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { LoginResponse } from '@muster/proto';
import { dialects, startTestServer, type TestServer } from '../../testing/harness.js';
import { adminTls, adminTlsRequest, held, loginKey } from '../../testing/login.js';
import { assertProblem } from '../../testing/problems.js';

for (const dialect of dialects()) {
  describe(`revoking a user's certificates (${dialect})`, () => {
    test('revoked on one replica, refused on the other at once; not renewable; enabling again does not revive it', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'muster-revoke-'));
      const tls = await adminTls(dir);
      const settings = { 'admin-cert': tls.cert, 'admin-key': tls.key };
      const a = await startTestServer(dialect, { settings });
      const b = await startTestServer(dialect, { settings, db: a.db, dataDir: a.dataDir, clock: a.clock });
      const on = (t: TestServer, path: string, cert: { cert: string; key: string }, body?: unknown) =>
        adminTlsRequest(`${t.server.adminUrl}${path}`, { ca: tls.caPem, ...cert, body });
      const login = async (t: TestServer, code: string) => {
        const { keyPem, csr } = await loginKey();
        const res = await adminTlsRequest(`${t.server.adminUrl}/v1/login`, {
          ca: tls.caPem,
          body: { code, csr },
        });
        assert.equal(res.status, 201, res.body);
        return held(res.json as LoginResponse, keyPem);
      };
      const codeFor = async (name: string) =>
        (await a.admin('POST', `/v1/users/${name}/login-code`)).json.code as string;
      try {
        const added = await a.admin('POST', '/v1/users', { name: 'hank', role: 'operator' });
        const laptop = await login(a, added.json.loginCode.code);
        const desktop = await login(b, await codeFor('hank'));
        assert.equal((await on(b, '/v1/nodes', laptop)).status, 200);
        assert.equal((await on(b, '/v1/nodes', desktop)).status, 200);

        // One certificate by its serial: the laptop's. The desktop's keeps working.
        const one = await a.admin('POST', '/v1/users/hank/certificates/revoke', { serial: laptop.serial });
        assert.equal(one.status, 200, one.body);
        assert.deepEqual(one.json, { user: 'hank', revoked: [laptop.serial] });
        assertProblem(await on(b, '/v1/nodes', laptop), 401, 'certificate_revoked');
        assert.equal((await on(b, '/v1/nodes', desktop)).status, 200);
        // A revoked certificate cannot renew itself into a fresh one.
        const { csr } = await loginKey();
        assertProblem(await on(b, '/v1/login', laptop, { csr }), 401, 'certificate_revoked');
        // Revoking it again changes nothing and records nothing; a serial not theirs is a 404.
        assert.deepEqual(
          (await a.admin('POST', '/v1/users/hank/certificates/revoke', { serial: laptop.serial })).json
            .revoked,
          [],
        );
        assertProblem(
          await a.admin('POST', '/v1/users/hank/certificates/revoke', { serial: 'ab'.repeat(16) }),
          404,
          'no_certificate',
        );
        assertProblem(await a.admin('POST', '/v1/users/nobody/certificates/revoke', {}), 404, 'no_user');
        assertProblem(
          await a.admin('POST', '/v1/users/hank/certificates/revoke', { serial: 'not hex' }),
          400,
        );

        // All of them (no serial), as a ledger decision under the admin's name.
        const all = await a.admin('POST', '/v1/users/hank/certificates/revoke', {});
        assert.deepEqual(all.json.revoked, [desktop.serial]);
        assertProblem(await on(b, '/v1/nodes', desktop), 401, 'certificate_revoked');
        const decisions = await b.admin('GET', '/v1/events?kind=user.certificates_revoked&limit=10');
        assert.deepEqual(
          decisions.json.items.map((e: { actor: string; data: { serials: string[] } }) => [
            e.actor,
            e.data.serials,
          ]),
          [
            ['user:admin', [desktop.serial]],
            ['user:admin', [laptop.serial]],
          ],
        );
        // And in the ledger, the proof of who decided what.
        const ledger = await b.admin('GET', '/v1/ledger/entries');
        const revokedEntries = ledger.json.entries.filter((e: { entry: string }) =>
          e.entry.includes('user.certificates_revoked'),
        );
        assert.equal(revokedEntries.length, 2, ledger.body);
        assert.match(revokedEntries[0].entry, /user:hank/);
        // The user is still enabled: a new code gets a new certificate that works.
        const fresh = await login(a, await codeFor('hank'));
        assert.equal((await on(b, '/v1/nodes', fresh)).status, 200);
      } finally {
        await b.close();
        await a.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    test('disabling a user revokes their certificates and ends their sessions and codes; enabling brings none back', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'muster-revoke-'));
      const tls = await adminTls(dir);
      const t = await startTestServer(dialect, {
        settings: { 'admin-cert': tls.cert, 'admin-key': tls.key },
      });
      const call = (path: string, opts: Omit<Parameters<typeof adminTlsRequest>[1], 'ca'> = {}) =>
        adminTlsRequest(`${t.server.adminUrl}${path}`, { ca: tls.caPem, ...opts });
      try {
        const added = await t.admin('POST', '/v1/users', { name: 'ivy', role: 'viewer' });
        const { keyPem, csr } = await loginKey();
        const res = await call('/v1/login', { body: { code: added.json.loginCode.code, csr } });
        assert.equal(res.status, 201, res.body);
        const ivy = held(res.json as LoginResponse, keyPem);
        const token = await t.admin('POST', '/v1/apitokens', { user: 'ivy' });
        const pending = (await t.admin('POST', '/v1/users/ivy/login-code')).json.code as string;
        const link = (await t.admin('POST', '/v1/users/ivy/links', {})).json.code as string;
        assert.equal((await call('/v1/nodes', ivy)).status, 200);

        const disabled = await t.admin('POST', '/v1/users/ivy/disable');
        assert.equal(disabled.status, 200, disabled.body);
        const decision = (await t.admin('GET', '/v1/events?kind=user.disabled&limit=1')).json.items[0];
        assert.deepEqual(decision.data.certificatesRevoked, [ivy.serial]);
        assert.equal((await t.admin('POST', '/v1/users/ivy/enable')).status, 200);

        // Twelve hours of validity left, but revoked for good.
        assertProblem(await call('/v1/nodes', ivy), 401, 'certificate_revoked');
        // The login code and the sign-in link made before she was disabled are gone too.
        const again = await loginKey();
        assertProblem(
          await call('/v1/login', { body: { code: pending, csr: again.csr } }),
          401,
          'login_code_refused',
        );
        const signIn = await call('/v1/session', { body: { code: link } });
        assertProblem(signIn, 401, 'bad_credential');
        // Her API token is hers to keep: enabling her brings it back (revoke it with apitoken revoke).
        const byToken = await call('/v1/nodes', {
          headers: { authorization: `Bearer ${token.json.secret}` },
        });
        assert.equal(byToken.status, 200, byToken.body);
        // A fresh start works: a new code, a new certificate.
        const code = (await t.admin('POST', '/v1/users/ivy/login-code')).json.code as string;
        const renewed = await call('/v1/login', { body: { code, csr: again.csr } });
        assert.equal(renewed.status, 201, renewed.body);
        assert.equal(
          (await call('/v1/nodes', { cert: renewed.json.certificate, key: again.keyPem })).status,
          200,
        );
      } finally {
        await t.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
