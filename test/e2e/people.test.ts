import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ApiTokenCreated, UserView } from '@muster/proto';
import {
  assertNoStackTrace,
  describeResult,
  dialects,
  Sandbox,
  type ServerUnderTest,
} from '../support/sandbox.js';

for (const dialect of dialects()) {
  describe(`people and roles through the CLI (${dialect})`, () => {
    const sandbox = new Sandbox();
    let server: ServerUnderTest;
    let dir: string;
    /** The flags that act as a user holding an API token, instead of the admin.token. */
    const asUser = (tokenFile: string) => ['--url', server.adminUrl, '--token-file', tokenFile];
    const tokenFileFor = async (user: string, extra: string[] = []) => {
      const made = await sandbox.json<ApiTokenCreated>([
        'apitoken',
        'create',
        '--user',
        user,
        ...extra,
        ...server.adminFlags,
      ]);
      const file = join(dir, `${made.id}.token`);
      writeFileSync(file, `${made.secret}\n`, { mode: 0o600 });
      return { file, id: made.id };
    };

    before(async () => {
      server = await sandbox.startServer(
        dialect === 'postgres' ? { db: await sandbox.postgresDatabase() } : {},
      );
      dir = sandbox.tempDir('people');
    });
    after(() => sandbox.cleanup());

    test('users are added, listed, re-roled, disabled and enabled; a disabled user is refused at once', async () => {
      const added = await sandbox.json<UserView>([
        'user',
        'add',
        'alice',
        '--role',
        'operator',
        ...server.adminFlags,
      ]);
      assert.equal(added.role, 'operator');
      const alice = await tokenFileFor('alice');
      const ls = await sandbox.run(['nodes', 'ls', ...asUser(alice.file)]);
      assert.equal(ls.code, 0, describeResult(ls));

      const viewer = await sandbox.json<UserView>([
        'user',
        'set-role',
        'alice',
        'viewer',
        ...server.adminFlags,
      ]);
      assert.equal(viewer.role, 'viewer');
      const refused = await sandbox.run(['token', 'create', ...asUser(alice.file)]);
      assert.equal(refused.code, 1, describeResult(refused));
      assert.match(refused.stderr, /role viewer may not create tokens/);
      assertNoStackTrace(refused.stderr);

      await sandbox.json(['user', 'disable', 'alice', ...server.adminFlags]);
      const disabled = await sandbox.run(['nodes', 'ls', ...asUser(alice.file)]);
      assert.equal(disabled.code, 1, describeResult(disabled));
      assert.equal(disabled.stderr.trim().split('\n').length, 1, disabled.stderr);
      const shown = await sandbox.json<UserView>(['user', 'show', 'alice', ...server.adminFlags]);
      assert.equal(shown.disabled, true);
      await sandbox.json(['user', 'enable', 'alice', ...server.adminFlags]);
      assert.equal((await sandbox.run(['nodes', 'ls', ...asUser(alice.file)])).code, 0);
      const users = await sandbox.json<UserView[]>(['user', 'ls', ...server.adminFlags]);
      assert.deepEqual(users.map((u) => u.name).sort(), ['admin', 'alice']);
    });

    test('an API token above its creator is refused with 403', async () => {
      await sandbox.json(['user', 'add', 'otto', '--role', 'operator', ...server.adminFlags]);
      const otto = await tokenFileFor('otto');
      const above = await sandbox.run(['apitoken', 'create', '--role', 'admin', ...asUser(otto.file)]);
      assert.equal(above.code, 1, describeResult(above));
      assert.match(above.stderr, /role admin is above role operator/);
      const within = await sandbox.json<ApiTokenCreated>([
        'apitoken',
        'create',
        '--role',
        'viewer',
        ...asUser(otto.file),
      ]);
      assert.equal(within.user, 'otto');
    });

    test('a role file with an unknown verb or resource is refused with exit 2, naming the line and the rule', async () => {
      const file = join(dir, 'bad-role.json');
      writeFileSync(
        file,
        [
          '{',
          '  "name": "oncall",',
          '  "allow": [',
          '    { "verbs": ["read"], "resources": ["nodes"] },',
          '    { "verbs": ["reboot"], "resources": ["nodes"] }',
          '  ],',
          '  "deny": [{ "verbs": ["read"], "resources": ["secrets"] }]',
          '}',
        ].join('\n'),
      );
      const bad = await sandbox.run(['role', 'apply', file, ...server.adminFlags]);
      assert.equal(bad.code, 2, describeResult(bad));
      assert.match(bad.stderr, /line 5: allow\[1\]: unknown verb "reboot"/);
      assert.match(bad.stderr, /line 7: deny\[0\]: unknown resource "secrets"/);
      assertNoStackTrace(bad.stderr);
      const builtin = join(dir, 'admin-role.json');
      writeFileSync(
        builtin,
        JSON.stringify({ name: 'admin', allow: [{ verbs: ['read'], resources: ['ca'] }] }),
      );
      const over = await sandbox.run(['role', 'apply', builtin, ...server.adminFlags]);
      assert.equal(over.code, 2, describeResult(over));
      assert.match(over.stderr, /line 1: "admin" is a built-in role and cannot be changed/);
      // Anything beyond admin's own verbs and resources (wildcards, secrets, a field of its own) is refused by line.
      const beyond = join(dir, 'beyond-role.json');
      writeFileSync(
        beyond,
        [
          '{',
          '  "name": "god",',
          '  "allow": [',
          '    { "verbs": ["*"], "resources": ["*"] }',
          '  ]',
          '}',
        ].join('\n'),
      );
      const god = await sandbox.run(['role', 'apply', beyond, ...server.adminFlags]);
      assert.equal(god.code, 2, describeResult(god));
      assert.match(god.stderr, /line 4: allow\[0\]: unknown verb "\*"/);
      assert.match(god.stderr, /unknown resource "\*"/);
      assertNoStackTrace(god.stderr);
      const extra = join(dir, 'extra-role.json');
      writeFileSync(
        extra,
        [
          '{',
          '  "name": "sneaky",',
          '  "allow": [',
          '    { "verbs": ["read"], "resources": ["nodes"], "sudo": true }',
          '  ]',
          '}',
        ].join('\n'),
      );
      const sneaky = await sandbox.run(['role', 'apply', extra, ...server.adminFlags]);
      assert.equal(sneaky.code, 2, describeResult(sneaky));
      assert.match(sneaky.stderr, /line 4: allow\[0\]: unknown field "sudo"/);
      const roles = await sandbox.json<Array<{ name: string }>>(['role', 'ls', ...server.adminFlags]);
      assert.deepEqual(
        roles.map((r) => r.name),
        ['viewer', 'operator', 'admin'],
      );
    });

    test('a scoped role applies, and the ledger filters by actor', async () => {
      const file = join(dir, 'oncall.json');
      writeFileSync(
        file,
        JSON.stringify({
          name: 'oncall',
          allow: [
            {
              verbs: ['read', 'create'],
              resources: ['nodes', 'events', 'commands'],
              nodes: { labels: { env: 'prod' } },
            },
          ],
        }),
      );
      const applied = await sandbox.run(['role', 'apply', file, ...server.adminFlags]);
      assert.equal(applied.code, 0, describeResult(applied));
      const shown = await sandbox.run(['role', 'show', 'oncall', ...server.adminFlags]);
      assert.match(shown.stdout, /allow read,create nodes,events,commands on nodes env=prod/);
      const mine = await sandbox.json<Array<{ actor: string; kind: string }>>([
        'ledger',
        'ls',
        '--actor',
        'user:admin',
        ...server.adminFlags,
      ]);
      assert.ok(mine.some((e) => e.kind === 'role.applied'));
      assert.ok(mine.every((e) => e.actor === 'user:admin'));
      const bad = await sandbox.run(['ledger', 'ls', '--actor', 'alice', ...server.adminFlags]);
      assert.equal(bad.code, 2, describeResult(bad));
    });

    test('user revoke-certs: a bad serial is exit 2, an unknown user or serial exit 1, and a user without one is told so', async () => {
      const bad = await sandbox.run([
        'user',
        'revoke-certs',
        'otto',
        '--serial',
        'xyz',
        ...server.adminFlags,
      ]);
      assert.equal(bad.code, 2, describeResult(bad));
      assert.match(bad.stderr, /--serial: "xyz" is not a certificate serial/);
      assertNoStackTrace(bad.stderr);
      const twoNames = await sandbox.run(['user', 'revoke-certs', 'otto', 'vera', ...server.adminFlags]);
      assert.equal(twoNames.code, 2, describeResult(twoNames));
      const nobody = await sandbox.run(['user', 'revoke-certs', 'nobody', ...server.adminFlags]);
      assert.equal(nobody.code, 1, describeResult(nobody));
      assert.match(nobody.stderr, /no user named nobody \(404\)/);
      const noSuch = await sandbox.run([
        'user',
        'revoke-certs',
        'otto',
        '--serial',
        'ab'.repeat(16),
        ...server.adminFlags,
      ]);
      assert.equal(noSuch.code, 1, describeResult(noSuch));
      assert.match(noSuch.stderr, /has no certificate with serial/);
      const none = await sandbox.run(['user', 'revoke-certs', 'otto', ...server.adminFlags]);
      assert.equal(none.code, 0, describeResult(none));
      assert.match(none.stdout, /User otto had no current certificate; nothing revoked\./);
      const asJson = await sandbox.json<{ user: string; revoked: string[] }>([
        'user',
        'revoke-certs',
        'otto',
        ...server.adminFlags,
      ]);
      assert.deepEqual(asJson, { user: 'otto', revoked: [] });
    });

    test('apitoken revoke bootstrap retires the admin.token', async () => {
      await sandbox.json(['user', 'add', 'sre', '--role', 'admin', ...server.adminFlags]);
      const sre = await tokenFileFor('sre');
      const listed = await sandbox.json<Array<{ id: string; user: string }>>([
        'apitoken',
        'ls',
        ...asUser(sre.file),
      ]);
      assert.ok(listed.some((t) => t.id === 'bootstrap' && t.user === 'admin'));
      const revoked = await sandbox.run(['apitoken', 'revoke', 'bootstrap', ...asUser(sre.file)]);
      assert.equal(revoked.code, 0, describeResult(revoked));
      const old = await sandbox.run(['nodes', 'ls', ...server.adminFlags]);
      assert.equal(old.code, 1, describeResult(old));
      assert.equal((await sandbox.run(['nodes', 'ls', ...asUser(sre.file)])).code, 0);
    });
  });
}
