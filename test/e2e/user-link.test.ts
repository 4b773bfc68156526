import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ApiTokenCreated, UserView } from '@muster/proto';
import { assertNoStackTrace, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

describe('muster user link and user e-mails, through the real binary', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;

  before(async () => {
    server = await sandbox.startServer();
  });
  after(() => sandbox.cleanup());

  /** Redeems a link's code as the console does; the status and the session cookie, if any. */
  async function openLink(
    link: string,
  ): Promise<{ status: number; cookie?: string; csrf?: string; detail?: string }> {
    const code = decodeURIComponent(/#code=(.+)$/.exec(link)![1]!);
    const res = await fetch(`${server.adminUrl}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    const body = (await res.json()) as { detail?: string; csrf?: string };
    const cookie = res.headers.get('set-cookie')?.split(';')[0];
    return { status: res.status, ...body, ...(cookie ? { cookie } : {}) };
  }

  test('user add --email and set-email store the address SSO matches; bad ones are usage errors', async () => {
    const added = await sandbox.json<UserView>([
      'user',
      'add',
      'pat',
      '--role',
      'viewer',
      '--email',
      'Pat@Example.com',
      ...server.adminFlags,
    ]);
    assert.equal(added.email, 'pat@example.com');
    const shown = await sandbox.run(['user', 'show', 'pat', ...server.adminFlags]);
    assert.match(shown.stdout, /User pat: role viewer, e-mail pat@example\.com, enabled/);
    const ls = await sandbox.run(['user', 'ls', ...server.adminFlags]);
    assert.match(ls.stdout, /^pat\s+viewer\s+enabled\s+pat@example\.com\s/m, describeResult(ls));

    const bad = await sandbox.run([
      'user',
      'add',
      'quin',
      '--role',
      'viewer',
      '--email',
      'quin',
      ...server.adminFlags,
    ]);
    assert.equal(bad.code, 2, describeResult(bad));
    assert.match(bad.stderr, /--email: "quin" is not an e-mail address/);
    assertNoStackTrace(bad.stderr);
    const both = await sandbox.run([
      'user',
      'set-email',
      'pat',
      'p@example.com',
      '--none',
      ...server.adminFlags,
    ]);
    assert.equal(both.code, 2, describeResult(both));

    const moved = await sandbox.json<UserView>([
      'user',
      'set-email',
      'pat',
      'pat@ops.example.com',
      ...server.adminFlags,
    ]);
    assert.equal(moved.email, 'pat@ops.example.com');
    assert.equal(
      (await sandbox.json<UserView>(['user', 'set-email', 'pat', '--none', ...server.adminFlags])).email,
      null,
    );
  });

  test('muster user link NAME signs in once as that user; a viewer may not make one', async () => {
    const made = await sandbox.run(['user', 'link', 'pat', ...server.adminFlags]);
    assert.equal(made.code, 0, describeResult(made));
    const link = made.stdout.trim();
    assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/#code=\S+$/);
    const first = await openLink(link);
    assert.equal(first.status, 201);
    const nodes = await fetch(`${server.adminUrl}/v1/nodes`, { headers: { cookie: first.cookie! } });
    assert.equal(nodes.status, 200);
    const tokens = await fetch(`${server.adminUrl}/v1/tokens`, {
      method: 'POST',
      headers: { cookie: first.cookie!, 'content-type': 'application/json', 'x-muster-csrf': first.csrf! },
      body: '{}',
    });
    assert.equal(tokens.status, 403, 'the session acts as pat, a viewer');
    assert.equal(((await tokens.json()) as { detail: string }).detail, 'role viewer may not create tokens');
    const again = await openLink(link);
    assert.equal(again.status, 401);
    assert.match(again.detail!, /links work once/);

    const ledger = await sandbox.run([
      'ledger',
      'ls',
      '--actor',
      'user:admin',
      '--json',
      ...server.adminFlags,
    ]);
    assert.equal(ledger.code, 0, describeResult(ledger));
    assert.match(ledger.stdout, /"user\.link_issued"/);
    assert.match(ledger.stdout, /"user:pat"/);

    const viewer = await sandbox.json<ApiTokenCreated>([
      'apitoken',
      'create',
      '--user',
      'pat',
      ...server.adminFlags,
    ]);
    const file = join(sandbox.tempDir('pat'), 'token');
    writeFileSync(file, `${viewer.secret}\n`, { mode: 0o600 });
    const refused = await sandbox.run([
      'user',
      'link',
      'pat',
      '--url',
      server.adminUrl,
      '--token-file',
      file,
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /role viewer may not update users/);
    assertNoStackTrace(refused.stderr);

    const unknown = await sandbox.run(['user', 'link', 'nobody', ...server.adminFlags]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no user named nobody/);
    const usage = await sandbox.run(['user', 'link', ...server.adminFlags]);
    assert.equal(usage.code, 2, describeResult(usage));
  });
});
