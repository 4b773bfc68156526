import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, watchForInjection } from '../support/browser.js';
import { agentArgsFromJoinLine } from '../support/fleet.js';
import { waitFor } from '../support/processes.js';
import { Sandbox, type ServerUnderTest } from '../support/sandbox.js';

describe('people and roles in the console, in a real Chromium', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let adminToken: string;
  let browser: Browser;
  let admin: Page;

  async function adminApi(method: string, path: string): Promise<{ status: number; json: any }> {
    const res = await fetch(`${server.adminUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}` },
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  /** A fresh browser context that opens a sign-in link; resolves once the fleet shows. */
  async function openLink(link: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    watchForInjection(page);
    await page.goto(link);
    await page.locator('tr[data-node="web-1"]').waitFor();
    return page;
  }

  /** Adds a user in the Users view and makes them a sign-in link there; returns the link. */
  async function addWithLink(name: string, role: string): Promise<string> {
    await admin.getByRole('link', { name: 'Users' }).click();
    await admin.getByLabel('Name').fill(name);
    await admin.getByLabel('Role', { exact: true }).selectOption(role);
    await admin.getByRole('button', { name: 'Add user' }).click();
    const row = admin.locator(`tr[data-user="${name}"]`);
    await row.waitFor();
    assert.equal(await row.getByLabel(`Role of ${name}`).inputValue(), role);
    await row.getByRole('button', { name: 'Sign-in link' }).click();
    await admin.getByRole('heading', { name: `Sign-in link for ${name}` }).waitFor();
    const link = (await admin.locator('[data-field=signin-link]').textContent())?.trim() ?? '';
    assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/#code=\S+$/);
    return link;
  }

  before(async () => {
    server = await sandbox.startServer();
    adminToken = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    const token = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'web-1',
      '--label',
      'env=prod',
      ...server.adminFlags,
    ]);
    sandbox.spawn([
      ...agentArgsFromJoinLine(token.agentCommand, server.agentUrl),
      '--data-dir',
      sandbox.tempDir('agent-web-1'),
    ]);
    await waitFor('the agent to enroll', async () =>
      (await adminApi('GET', '/v1/nodes')).json.items.length === 1 ? true : undefined,
    );
    browser = await launchChromium();
    const made = await sandbox.run(['console', 'link', ...server.adminFlags]);
    admin = await openLink(made.stdout.trim());
    assert.equal(await admin.locator('[data-field=user]').textContent(), 'admin');
    assert.equal(await admin.locator('[data-field=role]').textContent(), 'admin');
  });

  after(async () => {
    await browser?.close();
    await sandbox.cleanup();
  });

  test('a viewer signs in by link, sees the fleet, is offered no token to create, and a forged POST is 403', async () => {
    const viewer = await openLink(await addWithLink('vic', 'viewer'));
    assert.equal(await viewer.locator('[data-field=user]').textContent(), 'vic');
    assert.equal(await viewer.locator('[data-field=role]').textContent(), 'viewer');
    assert.equal(await viewer.getByRole('link', { name: 'Users' }).count(), 0, 'no Users view for a viewer');
    // A node's page offers a viewer no key rotation or decommission; it offers an admin both.
    for (const [page, offered] of [
      [viewer, 0],
      [admin, 1],
    ] as const) {
      await page.getByRole('link', { name: 'Nodes' }).click();
      await page.locator('tr[data-node="web-1"] a.node-link').click();
      await page.getByRole('heading', { name: 'web-1' }).waitFor();
      await page.getByRole('heading', { name: 'Telemetry' }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Rotate key' }).count(), offered);
      assert.equal(await page.getByRole('button', { name: 'Decommission…' }).count(), offered);
    }
    await viewer.getByRole('link', { name: 'Tokens' }).click();
    await viewer.locator('tr[data-token]').first().waitFor();
    assert.equal(await viewer.getByRole('button', { name: 'Create token' }).count(), 0);
    assert.equal(await viewer.getByRole('button', { name: 'Revoke…' }).count(), 0);
    await viewer.locator('[data-field=read-only]').waitFor();
    await viewer.getByRole('link', { name: 'Events' }).click();
    await viewer.getByRole('heading', { name: 'Events' }).waitFor();
    assert.equal(await viewer.getByRole('button', { name: 'Write the note' }).count(), 0);

    // What the page does not offer, a script in it cannot do either: the server refuses it.
    const forged = await viewer.evaluate(async () => {
      const session = (await (await fetch('/v1/session')).json()) as { csrf: string };
      const res = await fetch('/v1/tokens', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-muster-csrf': session.csrf },
        body: JSON.stringify({ uses: 1, ttlSec: 3600 }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    });
    assert.equal(forged.status, 403, JSON.stringify(forged.body));
    assert.equal(forged.body.code, 'forbidden');
    assert.equal(forged.body.detail, 'role viewer may not create tokens');
    const denied = await adminApi('GET', '/v1/events?kind=access.denied');
    const event = denied.json.items.find((e: { id: number }) => e.id === forged.body.eventId);
    assert.equal(event?.actor, 'user:vic');
    assert.equal((await adminApi('GET', '/v1/tokens')).json.items.length, 1, 'no token was made');

    // The admin raises vic to operator in the Users view; the server holds the new role.
    await admin.getByRole('link', { name: 'Users' }).click();
    await admin.locator('tr[data-user="vic"]').getByLabel('Role of vic').selectOption('operator');
    await waitFor('the role change', async () =>
      (await adminApi('GET', '/v1/users/vic')).json.role === 'operator' ? true : undefined,
    );
    await viewer.context().close();
  });

  test('an admin adds a user and disables them in the Users view; their open session stops working', async () => {
    const dan = await openLink(await addWithLink('dan', 'operator'));
    assert.equal(await dan.locator('[data-field=role]').textContent(), 'operator');
    const row = admin.locator('tr[data-user="dan"]');
    await row.getByRole('button', { name: 'Disable dan' }).click();
    await admin.locator('tr[data-user="dan"][data-state=disabled]').waitFor();
    assert.equal((await adminApi('GET', '/v1/users/dan')).json.disabled, true);
    // The console open in dan's browser is sent back to sign-in, and its cookie opens nothing.
    await dan.getByText('Your session has ended. Sign in again.').waitFor();
    const status = await dan.evaluate(async () => (await fetch('/v1/nodes')).status);
    assert.equal(status, 401);
    // Enabled again, dan needs a new link: the old session stays over.
    await admin.locator('tr[data-user="dan"]').getByRole('button', { name: 'Enable dan' }).click();
    await admin.locator('tr[data-user="dan"][data-state=active]').waitFor();
    await dan.context().close();
  });
});
