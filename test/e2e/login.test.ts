import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { EventEnvelope } from '@muster/proto';
import { opensslAdminTls } from '../support/admin-tls.js';
import {
  assertNoStackTrace,
  describeResult,
  dialects,
  Sandbox,
  type ServerUnderTest,
} from '../support/sandbox.js';

for (const dialect of dialects()) {
  describe(`muster login against a real server over HTTPS (${dialect})`, () => {
    const sandbox = new Sandbox();
    let server: ServerUnderTest;
    let tls: ReturnType<typeof opensslAdminTls>;
    /** The admin's own home, and the user's machine: a home of its own, no data dir, no token. */
    let adminEnv: Record<string, string>;
    let userEnv: Record<string, string>;
    let userHome: string;
    const admin = (args: string[]) => sandbox.run([...args, ...server.adminFlags, '--ca', tls.ca], adminEnv);
    const user = (args: string[]) => sandbox.run(args, userEnv);
    let code: string;

    before(async () => {
      tls = opensslAdminTls(sandbox.tempDir('admin-tls'));
      server = await sandbox.startServer({
        args: ['--admin-cert', tls.cert, '--admin-key', tls.key],
        ...(dialect === 'postgres' ? { db: await sandbox.postgresDatabase() } : {}),
      });
      adminEnv = { HOME: sandbox.tempDir('admin-home'), XDG_CONFIG_HOME: '' };
      userHome = sandbox.tempDir('user-home');
      userEnv = { HOME: userHome, XDG_CONFIG_HOME: '' };
    });
    after(() => sandbox.cleanup());

    test('muster user add prints a one-time code, and muster login turns it into a certificate muster nodes ls uses', async () => {
      assert.match(
        server.adminUrl,
        /^https:\/\//,
        'given --admin-cert, the admin plane serves HTTPS on loopback',
      );
      const added = await admin(['user', 'add', 'alice', '--role', 'operator']);
      assert.equal(added.code, 0, describeResult(added));
      const line = /muster login --url (\S+) --code (mlc_\S+)/.exec(added.stdout);
      assert.ok(line, `user add prints the line to log in with:\n${added.stdout}`);
      assert.equal(line[1], server.adminUrl);
      code = line[2]!;

      const login = await user(['login', '--url', server.adminUrl, '--code', code, '--ca', tls.ca]);
      assert.equal(login.code, 0, describeResult(login));
      assert.match(
        login.stdout,
        /Logged in as alice at https:\/\/127\.0\.0\.1:\d+; the certificate \(serial [0-9a-f]+\) is valid until /,
      );
      const port = new URL(server.adminUrl).port;
      const dir = join(userHome, '.config', 'muster', 'logins', `127.0.0.1_${port}`);
      for (const file of ['user.key', 'user.crt', 'ca.pem'])
        assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, `${file} is the user's alone`);

      const nodes = await user(['nodes', 'ls', '--url', server.adminUrl, '--json']);
      assert.equal(nodes.code, 0, describeResult(nodes));
      assert.deepEqual(JSON.parse(nodes.stdout), []);
      // The certificate acts as alice, with her role: an operator may not make join tokens.
      const token = await user(['token', 'create', '--url', server.adminUrl]);
      assert.equal(token.code, 1, describeResult(token));
      assert.match(token.stderr, /role operator may not create tokens \(403\)/);

      const events = await admin(['events', '--kind', 'user.certificate_issued', '--json']);
      assert.equal(events.code, 0, describeResult(events));
      const issued = JSON.parse(events.stdout) as EventEnvelope[];
      assert.deepEqual(
        issued.map((e) => [e.actor, e.data.via]),
        [['user:alice', 'code']],
      );
    });

    test('a later muster login renews with the certificate held; a reused code is refused', async () => {
      const renewed = await user(['login', '--url', server.adminUrl]);
      assert.equal(renewed.code, 0, describeResult(renewed));
      assert.match(renewed.stdout, /^Renewed as alice /);
      const nodes = await user(['nodes', 'ls', '--url', server.adminUrl]);
      assert.equal(nodes.code, 0, describeResult(nodes));

      const reused = await sandbox.run(['login', '--url', server.adminUrl, '--code', code, '--ca', tls.ca], {
        HOME: sandbox.tempDir('other-home'),
        XDG_CONFIG_HOME: '',
      });
      assert.equal(reused.code, 1, describeResult(reused));
      assert.match(reused.stderr, /the login code is unknown, used or expired/);
      assertNoStackTrace(reused.stderr);
    });

    test('bad input to muster login is a usage error', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['login', '--url', server.adminUrl, '--code', 'letmein'], /--code: not a login code/],
        [['login', '--url', server.adminUrl.replace('https:', 'http:')], /only used over HTTPS/],
        [['login'], /--url is required/],
      ];
      for (const [args, message] of cases) {
        const res = await sandbox.run(args, { HOME: sandbox.tempDir('fresh-home'), XDG_CONFIG_HOME: '' });
        assert.equal(res.code, 2, describeResult(res));
        assert.match(res.stderr, message);
        assertNoStackTrace(res.stderr);
      }
      const first = await sandbox.run(['login', '--url', server.adminUrl], {
        HOME: sandbox.tempDir('fresh-home'),
        XDG_CONFIG_HOME: '',
      });
      assert.equal(first.code, 2, describeResult(first));
      assert.match(first.stderr, /the first login takes --code CODE/);
    });

    test('a disabled user is refused at once; the CLI says which certificate', async () => {
      const disabled = await admin(['user', 'disable', 'alice']);
      assert.equal(disabled.code, 0, describeResult(disabled));
      const nodes = await user(['nodes', 'ls', '--url', server.adminUrl]);
      assert.equal(nodes.code, 1, describeResult(nodes));
      assert.match(
        nodes.stderr,
        /the server refused the certificate of alice from muster login .*user alice is disabled/,
      );
      const renew = await user(['login', '--url', server.adminUrl]);
      assert.equal(renew.code, 1, describeResult(renew));
      assert.match(renew.stderr, /user alice is disabled/);
    });
  });
}
