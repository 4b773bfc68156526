import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LoginResponse } from '@muster/proto';
import { CertificateAuthority } from '../../pki/ca.js';
import { dialects, enrollAgent, startTestServer, type TestServer } from '../../testing/harness.js';
import { adminTls, adminTlsRequest, type HeldCertificate, held, loginKey } from '../../testing/login.js';
import { assertProblem } from '../../testing/problems.js';

const HOUR = 3_600_000;
type CallOptions = Omit<Parameters<typeof adminTlsRequest>[1], 'ca'>;

for (const dialect of dialects()) {
  describe(`muster login: personal certificates on the admin plane (${dialect})`, () => {
    let dir: string;
    let tls: Awaited<ReturnType<typeof adminTls>>;
    let t: TestServer;
    const url = (path: string) => `${t.server.adminUrl}${path}`;
    const call = (path: string, opts: CallOptions = {}) =>
      adminTlsRequest(url(path), { ca: tls.caPem, ...opts });
    const codeFor = async (name: string) => {
      const res = await t.admin('POST', `/v1/users/${name}/login-code`);
      assert.equal(res.status, 201, res.body);
      return res.json.code as string;
    };
    const login = async (code: string): Promise<HeldCertificate> => {
      const { keyPem, csr } = await loginKey();
      const res = await call('/v1/login', { body: { code, csr } });
      assert.equal(res.status, 201, res.body);
      return held(res.json as LoginResponse, keyPem);
    };
    const addUser = async (name: string, role: string) => {
      const res = await t.admin('POST', '/v1/users', { name, role });
      assert.equal(res.status, 201, res.body);
      return res.json.loginCode.code as string;
    };

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'muster-login-'));
      tls = await adminTls(dir);
      t = await startTestServer(dialect, { settings: { 'admin-cert': tls.cert, 'admin-key': tls.key } });
    });
    after(async () => {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    });

    test('the code muster user add printed gets a 12 h certificate naming the user, which lists nodes with no token', async () => {
      assert.match(
        t.server.adminUrl,
        /^https:\/\/127\.0\.0\.1:/,
        'given --admin-cert, loopback serves HTTPS',
      );
      const code = await addUser('alice', 'viewer');
      assert.match(code, /^mlc_[A-Za-z0-9_-]{43}$/);
      const stored = await t.server.store.db
        .selectFrom('login_codes')
        .selectAll()
        .where('user', '=', 'alice')
        .execute();
      assert.equal(stored.length, 1);
      assert.equal(
        stored[0]!.code_hash,
        createHash('sha256').update(code).digest('hex'),
        'only a hash is kept',
      );

      const { keyPem, csr } = await loginKey();
      const res = await call('/v1/login', { body: { code, csr } });
      assert.equal(res.status, 201, res.body);
      const cert = new X509Certificate(res.json.certificate);
      assert.equal(res.json.user, 'alice');
      assert.equal(cert.subjectAltName, 'URI:spiffe://muster.local/user/alice');
      assert.equal(cert.subject, 'CN=alice');
      assert.ok(cert.checkIssued(t.server.identity.ca.certificate), 'issued by the fleet CA');
      assert.equal(Date.parse(res.json.notAfter) - t.clock.now(), 12 * HOUR);
      assert.equal(
        cert.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
        createPublicKey(keyPem).export({ type: 'spki', format: 'der' }).toString('hex'),
        'the certificate is for the key the user made',
      );

      const nodes = await call('/v1/nodes', { cert: res.json.certificate, key: keyPem });
      assert.equal(nodes.status, 200, nodes.body);
      // The user's role holds: a viewer may not make join tokens.
      const denied = await call('/v1/tokens', { body: {}, cert: res.json.certificate, key: keyPem });
      const problem = assertProblem(denied, 403, 'forbidden');
      assert.equal(problem.detail, 'role viewer may not create tokens');
      const events = await t.admin('GET', '/v1/events?kind=access.denied&limit=5');
      const denial = events.json.items.find((e: { id: number }) => e.id === denied.json.eventId);
      assert.equal(denial.actor, 'user:alice');
      assert.equal(denial.data.credential, `cert:${res.json.serial}`);

      const issued = await t.admin('GET', '/v1/events?kind=user.certificate_issued&limit=5');
      const decision = issued.json.items.find(
        (e: { data: { serial: string } }) => e.data.serial === res.json.serial,
      );
      assert.equal(decision.actor, 'user:alice');
      assert.equal(decision.data.via, 'code');
    });

    test('a later login renews with the certificate held, no code; the renewed one supersedes it at first use', async () => {
      const first = await login(await addUser('bob', 'operator'));
      const { keyPem, csr } = await loginKey();
      const renewed = await call('/v1/login', { body: { csr }, cert: first.cert, key: first.key });
      assert.equal(renewed.status, 201, renewed.body);
      assert.notEqual(renewed.json.serial, first.serial);
      // Until the renewed one is used, the old one still works (an answer lost on the way costs nothing).
      assert.equal((await call('/v1/nodes', { cert: first.cert, key: first.key })).status, 200);
      assert.equal((await call('/v1/nodes', { cert: renewed.json.certificate, key: keyPem })).status, 200);
      assertProblem(
        await call('/v1/nodes', { cert: first.cert, key: first.key }),
        401,
        'certificate_superseded',
      );
      const issued = await t.admin('GET', '/v1/events?kind=user.certificate_issued&limit=20');
      const decision = issued.json.items.find(
        (e: { data: { serial: string } }) => e.data.serial === renewed.json.serial,
      );
      assert.equal(decision.actor, 'user:bob');
      assert.deepEqual([decision.data.via, decision.data.credential], ['renewal', `cert:${first.serial}`]);
      // Without a code or a certificate there is nothing to renew.
      assertProblem(await call('/v1/login', { body: { csr } }), 401, 'login_required');
    });

    test('refused: a node identity, a user that does not exist, another CA, an expired or a disabled user certificate', async () => {
      const agent = await enrollAgent(t, { name: 'login-node' });
      const asNode = assertProblem(
        await call('/v1/nodes', { cert: agent.certPem, key: agent.keyPem }),
        401,
        'not_a_user',
      );
      assert.match(asNode.detail, /users and nodes are different principals/);
      agent.agent.destroy();

      const spki = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const mint = (ca: CertificateAuthority, user: string, serial: string) => {
        const keys = spki();
        const issued = ca.issueUserCertificate({
          spki: keys.publicKey.export({ type: 'spki', format: 'der' }),
          user,
          serial,
          now: t.clock.now(),
          lifetimeMs: HOUR,
        });
        return { cert: issued.pem, key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
      };
      const ghost = mint(t.server.identity.ca, 'ghost', '1c'.repeat(16));
      assertProblem(await call('/v1/nodes', ghost), 401, 'no_user');
      const { ca: rogue } = CertificateAuthority.create({
        now: t.clock.now(),
        lifetimeMs: HOUR,
        trustDomain: 'muster.local',
        serial: '2d'.repeat(16),
      });
      assertProblem(
        await call('/v1/nodes', mint(rogue, 'alice', '3e'.repeat(16))),
        401,
        'certificate_untrusted',
      );
      // Issued by the fleet CA with a user's name, but never through a login: not current.
      assertProblem(
        await call('/v1/nodes', mint(t.server.identity.ca, 'alice', '4f'.repeat(16))),
        401,
        'certificate_revoked',
      );

      const dana = await login(await addUser('dana', 'viewer'));
      assert.equal((await call('/v1/nodes', dana)).status, 200);
      assert.equal((await t.admin('POST', '/v1/users/dana/disable')).status, 200);
      assertProblem(await call('/v1/nodes', dana), 401, 'user_disabled');
      const { csr } = await loginKey();
      assertProblem(await call('/v1/login', { body: { csr }, ...dana }), 401, 'user_disabled');
      // Disabling revoked the certificate for good: enabling her again does not bring it back.
      assert.equal((await t.admin('POST', '/v1/users/dana/enable')).status, 200);
      assertProblem(await call('/v1/nodes', dana), 401, 'certificate_revoked');

      t.clock.advance(12 * HOUR);
      assertProblem(await call('/v1/nodes', dana), 401, 'certificate_expired');
      assertProblem(await call('/v1/login', { body: { csr }, ...dana }), 401, 'certificate_expired');
      // With no credential at all, as before.
      assertProblem(await call('/v1/nodes'), 401, 'unauthorized');
    });

    test('a login code is refused when reused, expired, replaced or unknown', async () => {
      const code = await addUser('carol', 'viewer');
      await login(code);
      const { csr } = await loginKey();
      assertProblem(await call('/v1/login', { body: { code, csr } }), 401, 'login_code_refused');
      const replaced = await codeFor('carol');
      await codeFor('carol');
      assertProblem(await call('/v1/login', { body: { code: replaced, csr } }), 401, 'login_code_refused');
      const expiring = await codeFor('carol');
      t.clock.advance(24 * HOUR + 1000);
      assertProblem(await call('/v1/login', { body: { code: expiring, csr } }), 401, 'login_code_refused');
      const unknown = `mlc_${'A'.repeat(43)}`;
      assertProblem(await call('/v1/login', { body: { code: unknown, csr } }), 401, 'login_code_refused');
      assertProblem(
        await call('/v1/login', { body: { code: await codeFor('carol'), csr: 'not a csr' } }),
        400,
        'bad_csr',
      );
    });
  });

  describe(`refused credentials are limited per user, whatever the source (${dialect})`, () => {
    test('a user whose credentials keep failing gets 429 from a fresh address; another address and user do not', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'muster-login-'));
      const tls = await adminTls(dir);
      const t = await startTestServer(dialect, {
        settings: { 'admin-cert': tls.cert, 'admin-key': tls.key, 'auth-failure-rate': '3' },
      });
      try {
        const call = (path: string, opts: CallOptions) =>
          adminTlsRequest(`${t.server.adminUrl}${path}`, { ca: tls.caPem, ...opts });
        const added = await t.admin('POST', '/v1/users', { name: 'erin', role: 'viewer' });
        const code = added.json.loginCode.code as string;
        const { keyPem, csr } = await loginKey();
        const first = await call('/v1/login', { body: { code, csr }, localAddress: '127.0.0.9' });
        assert.equal(first.status, 201, first.body);
        const erin = held(first.json as LoginResponse, keyPem);
        const erinsToken = await t.admin('POST', '/v1/apitokens', { user: 'erin' });
        assert.equal((await t.admin('POST', '/v1/users/erin/disable')).status, 200);
        // Each from its own address, so no source spends its budget: only the user does, with
        // her certificate, her used code and her token alike.
        const refusals = [
          () => call('/v1/nodes', { ...erin, localAddress: '127.0.0.2' }),
          () => call('/v1/login', { body: { code, csr }, localAddress: '127.0.0.3' }),
          () =>
            call('/v1/nodes', {
              headers: { authorization: `Bearer ${erinsToken.json.secret}` },
              localAddress: '127.0.0.4',
            }),
        ];
        for (const refusal of refusals) assertProblem(await refusal(), 401);
        const limited = assertProblem(
          await call('/v1/nodes', { ...erin, localAddress: '127.0.0.5' }),
          429,
          'rate_limited',
        );
        assert.match(limited.detail, /for this user/);
        // Another user's refusal from that same fresh address is still a plain 401.
        assertProblem(
          await call('/v1/nodes', {
            headers: { authorization: `Bearer mat_${'x'.repeat(43)}` },
            localAddress: '127.0.0.5',
          }),
          401,
          'unauthorized',
        );
        // And a valid credential of another user is accepted.
        const other = await t.admin('POST', '/v1/apitokens', { user: 'admin' });
        assert.equal(
          (
            await call('/v1/nodes', {
              headers: { authorization: `Bearer ${other.json.secret}` },
              localAddress: '127.0.0.5',
            })
          ).status,
          200,
        );
      } finally {
        await t.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe(`user certificates across replicas (${dialect})`, () => {
    test('a user disabled on one replica is refused on the other at once', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'muster-login-'));
      const tls = await adminTls(dir);
      const settings = { 'admin-cert': tls.cert, 'admin-key': tls.key };
      const a = await startTestServer(dialect, { settings });
      const b = await startTestServer(dialect, { settings, db: a.db, dataDir: a.dataDir, clock: a.clock });
      try {
        const added = await a.admin('POST', '/v1/users', { name: 'gail', role: 'operator' });
        const { keyPem, csr } = await loginKey();
        const res = await adminTlsRequest(`${a.server.adminUrl}/v1/login`, {
          ca: tls.caPem,
          body: { code: added.json.loginCode.code, csr },
        });
        assert.equal(res.status, 201, res.body);
        const gail = { ca: tls.caPem, cert: res.json.certificate as string, key: keyPem };
        assert.equal((await adminTlsRequest(`${b.server.adminUrl}/v1/nodes`, gail)).status, 200);
        assert.equal((await a.admin('POST', '/v1/users/gail/disable')).status, 200);
        assertProblem(await adminTlsRequest(`${b.server.adminUrl}/v1/nodes`, gail), 401, 'user_disabled');
      } finally {
        await b.close();
        await a.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
