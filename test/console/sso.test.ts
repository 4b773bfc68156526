import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '@muster/server';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, watchForInjection } from '../support/browser.js';
import { type InProcessServer, startInProcessServer } from '../support/in-process.js';
import { startProvider, type TestProvider } from '../support/oidc.js';
import { dialects, Sandbox } from '../support/sandbox.js';

/** The provider's accounts: who they are at the identity provider, by login name. */
const ACCOUNTS = {
  alice: { email: 'Alice@Example.com', email_verified: true },
  uma: { email: 'uma@example.com', email_verified: false },
  nobody: { email: 'nobody@example.com', email_verified: true },
  dora: { email: 'dora@example.com', email_verified: true },
};
/** The provider's ID tokens live a minute; Muster's clock is moved past that for the expired case. */
const ID_TOKEN_TTL_SEC = 60;

for (const dialect of dialects()) {
  describe(`console single sign-on through a real OpenID provider, in a real Chromium (${dialect})`, () => {
    const sandbox = new Sandbox();
    const clock = new ManualClock(Date.now());
    let muster: InProcessServer;
    let provider: TestProvider;
    let adminUrl: string;
    let browser: Browser;
    let oidcSettings: Record<string, string>;

    before(async () => {
      const started = await startProvider(ACCOUNTS);
      const secretFile = join(sandbox.tempDir('oidc'), 'client-secret');
      const ids = { clientId: 'muster', secret: 'test-client-secret-that-is-long-enough' };
      writeFileSync(secretFile, `${ids.secret}\n`, { mode: 0o600 });
      oidcSettings = {
        'oidc-issuer': started.issuer,
        'oidc-client-id': ids.clientId,
        'oidc-client-secret-file': secretFile,
      };
      muster = await startInProcessServer(sandbox, dialect, oidcSettings, clock);
      const port = (muster.server.app.admin.server.address() as { port: number }).port;
      adminUrl = `http://127.0.0.1:${port}`;
      provider = started.configure(`${adminUrl}/signin/sso`, { idTokenTtlSec: ID_TOKEN_TTL_SEC });
      for (const [name, role, email] of [
        ['alice', 'viewer', 'alice@example.com'],
        ['uma', 'operator', 'uma@example.com'],
        ['dora', 'operator', 'dora@example.com'],
      ] as const) {
        const added = await muster.admin('POST', '/v1/users', { name, role, email });
        assert.equal(added.status, 201, JSON.stringify(added.json));
      }
      assert.equal((await muster.admin('POST', '/v1/users/dora/disable')).status, 200);
      browser = await launchChromium();
    });

    after(async () => {
      await browser?.close();
      await provider?.close();
      await muster?.close();
      await sandbox.cleanup();
    });

    /** Clicks "Sign in with SSO" and through the provider's login and consent pages as `login`. */
    async function signInAs(
      login: string,
      beforeConsent?: () => void,
    ): Promise<{ page: Page; callback: string }> {
      const context = await browser.newContext();
      const page = await context.newPage();
      watchForInjection(page);
      // The provider's dev pages load a web font; nothing here reaches the network.
      await page.route(/fonts\.googleapis\.com/, (route) => route.abort());
      let callback = '';
      page.on('request', (request) => {
        if (request.isNavigationRequest() && request.url().startsWith(`${adminUrl}/signin/sso?`))
          callback = request.url();
      });
      await page.goto(`${adminUrl}/signin`);
      await page.getByRole('button', { name: 'Sign in with SSO' }).click();
      await page.locator('input[name=login]').fill(login);
      await page.locator('input[name=password]').fill('any password');
      await page.getByRole('button', { name: 'Sign-in' }).click();
      beforeConsent?.();
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.waitForURL(`${adminUrl}/**`);
      return { page, callback };
    }

    /** The sign-in page's message after a refused sign-on. */
    async function refusal(page: Page): Promise<string> {
      const note = page.locator('main.signin .note');
      await note.waitFor();
      return (await note.textContent()) ?? '';
    }

    /** The `access.denied` event a refused sign-on recorded, by its reason. */
    async function deniedEvent(reason: string) {
      const { json } = await muster.admin('GET', '/v1/events?kind=access.denied&limit=100');
      return (json.items as Array<{ actor: string; data: Record<string, unknown> }>).find(
        (e) => e.data.via === 'sso' && e.data.reason === reason,
      );
    }

    let replay = '';

    test('a user signs in by SSO, matched by verified e-mail, and acts with their role until disabled', async () => {
      const { page, callback } = await signInAs('alice');
      replay = callback;
      assert.match(callback, /[?&]code=[^&]+/, 'the provider sent the browser back with a code');
      assert.match(callback, /[?&]state=[^&]+/);
      await page.waitForURL(`${adminUrl}/nodes`);
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
      assert.doesNotMatch(page.url(), /code=|state=/, 'the code and state are wiped from the address bar');
      // The session acts as alice with alice's role: viewer may read, may not create tokens.
      const calls = await page.evaluate(async () => {
        const s = (await (await fetch('/v1/session')).json()) as { csrf: string };
        const nodes = await fetch('/v1/nodes');
        const forged = await fetch('/v1/tokens', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-muster-csrf': s.csrf },
          body: '{}',
        });
        const problem = (await forged.json()) as { detail: string };
        return { nodes: nodes.status, forged: forged.status, detail: problem.detail };
      });
      assert.deepEqual(calls, { nodes: 200, forged: 403, detail: 'role viewer may not create tokens' });
      const denied = await muster.admin('GET', '/v1/events?kind=access.denied&limit=5');
      assert.equal(denied.json.items[0].actor, 'user:alice');

      assert.equal((await muster.admin('POST', '/v1/users/alice/disable')).status, 200);
      const afterDisable = await page.evaluate(async () => (await fetch('/v1/nodes')).status);
      assert.equal(afterDisable, 401, "a disabled user's SSO session stops at once");
      assert.equal((await muster.admin('POST', '/v1/users/alice/enable')).status, 200);
      await page.context().close();
    });

    test('a replayed sign-in answer (the same state and code again) is refused', async () => {
      assert.ok(replay, 'the first test captured the callback URL');
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(replay);
      assert.match(await refusal(page), /this sign-in answer was already used once; start again/);
      assert.ok(await deniedEvent('replayed_state'), 'an access.denied event names the replay');
      await context.close();
    });

    test('an ID token for another audience is refused', async () => {
      provider.issueForOtherAudience(true);
      try {
        const { page } = await signInAs('alice');
        assert.match(
          await refusal(page),
          /ID token is meant for "wiki", not for this console \(client id muster\)/,
        );
        await page.context().close();
      } finally {
        provider.issueForOtherAudience(false);
      }
      assert.ok(await deniedEvent('wrong_audience'));
    });

    test('an expired ID token is refused', async () => {
      // The provider issues a 60 s token; Muster's clock is five minutes ahead when it checks it.
      const { page } = await signInAs('alice', () => clock.set(Date.now() + 5 * 60_000));
      try {
        assert.match(await refusal(page), /ID token has expired/);
      } finally {
        clock.set(Date.now());
      }
      assert.ok(await deniedEvent('expired_token'));
      await page.context().close();
    });

    test('an e-mail the provider has not verified is refused', async () => {
      const { page } = await signInAs('uma');
      assert.match(
        await refusal(page),
        /the e-mail uma@example\.com is not verified at the identity provider/,
      );
      assert.ok(await deniedEvent('unverified_email'));
      await page.context().close();
    });

    test('an e-mail that matches no user is refused', async () => {
      const { page } = await signInAs('nobody');
      assert.match(await refusal(page), /no Muster user has the e-mail nobody@example\.com/);
      const event = await deniedEvent('unknown_email');
      assert.equal(event?.actor, 'system');
      assert.equal(event?.data.email, 'nobody@example.com');
      await page.context().close();
    });

    test('a disabled user is refused', async () => {
      const { page } = await signInAs('dora');
      assert.match(await refusal(page), /user dora is disabled/);
      assert.equal((await deniedEvent('disabled_user'))?.actor, 'user:dora');
      await page.context().close();
    });

    if (dialect === 'postgres') {
      test('a sign-in started on one replica finishes on another, which shares the store', async () => {
        // Behind one address both replicas are configured with the same redirect URL.
        const replica = await startInProcessServer(
          sandbox,
          dialect,
          { ...oidcSettings, 'oidc-redirect-url': `${adminUrl}/signin/sso` },
          clock,
          muster,
        );
        try {
          const port = (replica.server.app.admin.server.address() as { port: number }).port;
          const context = await browser.newContext();
          const page = await context.newPage();
          await page.route(/fonts\.googleapis\.com/, (route) => route.abort());
          // The provider's answer comes back to replica A, whose page is kept from finishing
          // there; it is taken to replica B instead (the browser's cookie for 127.0.0.1 goes to
          // both: cookies do not care for ports).
          let callback = '';
          page.on('request', (request) => {
            if (request.isNavigationRequest() && request.url().startsWith(`${adminUrl}/signin/sso?`))
              callback = request.url();
          });
          await page.route(`${adminUrl}/v1/session/sso/callback`, (route) => route.abort());
          await page.goto(`${adminUrl}/signin`);
          await page.getByRole('button', { name: 'Sign in with SSO' }).click();
          await page.locator('input[name=login]').fill('alice');
          await page.locator('input[name=password]').fill('any password');
          await page.getByRole('button', { name: 'Sign-in' }).click();
          await page.getByRole('button', { name: 'Continue' }).click();
          await waitForValue(() => callback);
          await page.goto(callback.replace(adminUrl, `http://127.0.0.1:${port}`));
          await page.waitForURL(`http://127.0.0.1:${port}/nodes`);
          await page.getByRole('button', { name: 'Sign out' }).waitFor();
          await context.close();
        } finally {
          await replica.close();
        }
      });
    }
  });
}

/** Polls until `get` gives a non-empty value (a route handler ran). */
async function waitForValue(get: () => string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    if (get()) return get();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the provider never sent the browser back');
}
