import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCsrPem, generateKeyPair } from '@muster/host';
import type { TokenCreated } from '@muster/proto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, watchForInjection } from '../support/browser.js';
import { command, dataDirRoot, makeOperator, signedPolicy } from '../support/commands.js';
import { agentArgsFromJoinLine } from '../support/fleet.js';
import { type MusterProcess, waitFor } from '../support/processes.js';
import { Sandbox, type ServerUnderTest } from '../support/sandbox.js';

/** Node offline takes 3 missed 1 s heartbeats, a status sweep (every 5 s) and the debounce. */
const OFFLINE_DEADLINE_MS = 40_000;

const SCRIPT_TEXT = '<script>window.__pwned = "note"</script>';
const IMG_TEXT = '<img src=x onerror="window.__pwned = \'img\'">';
const JS_URL_TEXT = 'javascript:window.__pwned = "url"';
const HOSTNAME_TEXT = '<img src=x onerror="window.__pwned = \'hostname\'">';

describe('the Mission Console in a real Chromium, against a real server and agents', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let adminToken: string;
  let browser: Browser;
  const agents = new Map<string, MusterProcess>();

  /** The admin API with the bearer token, as a script outside the browser calls it. */
  async function adminApi(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: any }> {
    const res = await fetch(`${server.adminUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  async function startAgent(name: string, labels: string[] = []): Promise<void> {
    const token = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      name,
      '--profile',
      'web',
      ...labels.flatMap((l) => ['--label', l]),
      ...server.adminFlags,
    ]);
    agents.set(
      name,
      sandbox.spawn([
        ...agentArgsFromJoinLine(token.agentCommand, server.agentUrl),
        '--data-dir',
        sandbox.tempDir(`agent-${name}`),
      ]),
    );
  }

  /** A fresh browser context signed in with the admin token through the sign-in page. */
  async function signedIn(): Promise<{
    context: BrowserContext;
    page: Page;
    seen: ReturnType<typeof watchForInjection>;
  }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const seen = watchForInjection(page);
    await page.goto(`${server.adminUrl}/`);
    await page.getByLabel('Admin token').fill(adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-stream=live]').waitFor();
    return { context, page, seen };
  }

  before(async () => {
    server = await sandbox.startServer({ args: ['--status-debounce', '1s'] });
    adminToken = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    await startAgent('web-1', ['env=prod']);
    await startAgent('web-2', ['env=prod']);
    await waitFor('both agents to report', async () => {
      const { json } = await adminApi('GET', '/v1/nodes');
      const reporting = json.items.filter((n: any) => n.lastSeenAt !== null);
      return reporting.length === 2 ? true : undefined;
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await sandbox.cleanup();
  });

  test('a one-time sign-in link signs in once; the console then shows the nodes and the fleet bar', async () => {
    // The server prints no code where its stdout is not a terminal; `muster console link` makes one.
    assert.doesNotMatch(server.process.stdout, /#code=/);
    const made = await sandbox.run(['console', 'link', ...server.adminFlags]);
    const link = made.stdout.trim();
    assert.match(
      link,
      /^http:\/\/\S+#code=\S+$/,
      `muster console link printed a sign-in link:\n${made.stderr}`,
    );
    const context = await browser.newContext();
    const page = await context.newPage();
    const seen = watchForInjection(page);
    await page.goto(link);
    await page.locator('tr[data-node="web-1"]').waitFor();
    await page.locator('tr[data-node="web-2"]').waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the code is wiped from the address bar');
    assert.equal(await page.locator('tr[data-node="web-1"] td').nth(2).textContent(), 'web');
    assert.match((await page.locator('tr[data-node="web-1"]').textContent()) ?? '', /env=prod/);
    await waitFor('the fleet bar to count the channels', async () =>
      (await page.locator('[data-figure=channels]').textContent()) === '2' ? true : undefined,
    );
    await context.close();

    // The same link a second time is refused: sign-in page, with the reason.
    const again = await browser.newContext();
    const page2 = await again.newPage();
    await page2.goto(link);
    await page2.getByLabel('Admin token').waitFor();
    await page2.getByText(/links work once/).waitFor();
    await again.close();
    assert.deepEqual(seen.dialogs, []);
  });

  test('creating a join token shows the exact agent line once, lists it, and revokes it', async () => {
    const { context, page } = await signedIn();
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Profile').fill('db');
    await page.getByLabel('Labels').fill('env=staging, tier=2');
    await page.getByLabel('Uses').fill('3');
    await page.getByRole('button', { name: 'Create token' }).click();
    const line = (await page.locator('[data-field=agent-line]').textContent())?.trim() ?? '';
    assert.match(
      line,
      /^printf '%s' 'mjt_[A-Za-z0-9_-]+' \| muster agent --server https:\/\/\S+ --ca-pin sha256:[0-9a-f]{64} --root-pin sha256:[0-9a-f]{64} --token-file -$/,
    );
    const id = /Token (tok_[0-9a-f]+) created/.exec(
      (await page.locator('#created-title').textContent()) ?? '',
    )?.[1];
    assert.ok(id);
    const { json } = await adminApi('GET', '/v1/tokens');
    const made = json.items.find((t: any) => t.id === id);
    assert.deepEqual(
      { profile: made.profile, labels: made.labels, uses: made.usesTotal },
      { profile: 'db', labels: { env: 'staging', tier: '2' }, uses: 3 },
    );
    const row = page.locator(`tr[data-token="${id}"]`);
    assert.equal(await row.locator('.state').textContent(), 'active');
    await row.getByRole('button', { name: 'Revoke…' }).click();
    await row.getByRole('button', { name: `Revoke ${id}` }).click();
    await row.locator('.state-revoked').waitFor();
    await context.close();
  });

  test("a node's page shows its facts, certificate and telemetry charts", async () => {
    const { context, page } = await signedIn();
    await page.locator('tr[data-node="web-1"] a').click();
    await page.getByRole('heading', { name: 'web-1' }).waitFor();
    await page.getByText('Renewal due').waitFor();
    const { json: node } = await adminApi('GET', '/v1/nodes/web-1');
    await page.getByText(node.cert.serial).waitFor();
    // One heartbeat a second: the CPU chart has a line and says its latest value.
    const cpu = page.locator('figure[data-chart=CPU]');
    await waitFor('the CPU chart to draw a line', async () =>
      (await cpu.locator('polyline').count()) > 0 ? true : undefined,
    );
    assert.match((await cpu.locator('figcaption').textContent()) ?? '', /latest \d+(\.\d)?%, peak/);
    for (const title of ['Load (1 min)', 'Memory used', 'Fullest disk']) {
      await page.locator(`figure[data-chart="${title}"]`).waitFor();
    }
    await page.getByRole('button', { name: '1 h' }).click();
    await page.locator('[aria-pressed=true]', { hasText: '1 h' }).waitFor();
    await page.getByText('web-1 enrolled as web').waitFor();
    await context.close();
  });

  test('a node whose agent stops goes offline in the list, live, without a reload', async () => {
    const { context, page } = await signedIn();
    const row = page.locator('tr[data-node="web-2"]');
    await row.waitFor();
    assert.notEqual(await row.getAttribute('data-status'), 'offline');
    await agents.get('web-2')!.stop();
    await page
      .locator('tr[data-node="web-2"][data-status=offline]')
      .waitFor({ timeout: OFFLINE_DEADLINE_MS });
    assert.match((await row.textContent()) ?? '', /no heartbeat/);
    // Attention first: the offline node leads the list.
    assert.equal(await page.locator('tr[data-node]').first().getAttribute('data-node'), 'web-2');
    assert.equal(await page.locator('[data-status=offline] strong').textContent(), '1');
    await context.close();
  });

  test('names, facts, labels, notes and incidents carrying markup or javascript: are shown as text and never run', async () => {
    // A host can report any hostname: it comes in with enrollment.
    const token = await adminApi('POST', '/v1/tokens', { labels: { link: 'javascript:alert' } });
    const keys = await generateKeyPair();
    const enrolled = await enroll(server.agentUrl, {
      token: token.json.secret,
      csr: createCsrPem(keys, 'xss-host'),
      name: 'xss-host',
      facts: {
        hostname: HOSTNAME_TEXT,
        os: 'linux',
        arch: 'x64',
        kernel: JS_URL_TEXT,
        cpus: 1,
        memoryBytes: 1,
        agentVersion: '0.1.0',
      },
    });
    assert.equal(enrolled, 201);
    await adminApi('POST', '/v1/events', { kind: 'incident', text: IMG_TEXT });

    const { context, page, seen } = await signedIn();
    await page.getByRole('link', { name: 'Events' }).click();
    for (const text of [SCRIPT_TEXT, JS_URL_TEXT]) {
      await page.getByLabel('Text').fill(text);
      await page.getByRole('button', { name: 'Write the note' }).click();
      await page.locator('.feed .text', { hasText: text }).first().waitFor();
    }
    await page.locator('.feed .text', { hasText: IMG_TEXT }).first().waitFor();

    await page.getByRole('link', { name: 'Nodes' }).click();
    await page.locator('tr[data-node="xss-host"] a').click();
    await page.getByText(HOSTNAME_TEXT).waitFor();
    await page.getByText('link=javascript:alert').waitFor();

    assert.equal(await page.evaluate(() => (globalThis as any).__pwned), undefined, 'no injected script ran');
    assert.deepEqual(seen.dialogs, []);
    assert.equal(await page.locator('img').count(), 0, 'no <img> element was made from text');
    assert.equal(await page.locator('a[href^="javascript:"]').count(), 0);
    assert.equal(await page.locator('script:not([src])').count(), 0);
    await context.close();
  });

  test("commands show live with each node's state and output; output carrying markup stays text", async () => {
    const root = dataDirRoot(server.dataDir);
    const ops = makeOperator('ops');
    const policy = {
      version: 1,
      operators: [{ name: 'ops', publicKey: ops.publicKey, profiles: ['*'] }],
      profiles: {
        web: {
          actions: {
            say: {
              argv: ['echo', '{text}'],
              args: { text: { pattern: '.*' } },
              timeoutSec: 5,
              maxOutputBytes: 4096,
            },
          },
        },
      },
    };
    assert.equal((await adminApi('POST', '/v1/policy', signedPolicy(policy, root.privateKey))).status, 201);
    const { context, page, seen } = await signedIn();
    await page.getByRole('link', { name: 'Commands' }).click();
    await page.getByText('No commands yet.').waitFor();
    const hostile = `${SCRIPT_TEXT} ${IMG_TEXT} ${JS_URL_TEXT}`;
    // web-2's agent was stopped by the offline test above: web-1 answers.
    const signed = command(ops, { nodes: ['web-1'] }, 'say', { text: hostile });
    assert.equal((await adminApi('POST', '/v1/commands', signed)).status, 202);
    // The list updates from the event stream, without a reload.
    await page.locator(`tr[data-command="${signed.command.id}"]`, { hasText: '1 succeeded' }).waitFor();
    await page.locator(`tr[data-command="${signed.command.id}"] a`).click();
    await page.locator('tr[data-node="web-1"] .pill', { hasText: 'succeeded' }).waitFor();
    assert.equal((await page.locator('[data-field="stdout"]').first().textContent())?.trim(), hostile);
    assert.equal(await page.evaluate(() => (globalThis as any).__pwned), undefined, 'no injected script ran');
    assert.deepEqual(seen.dialogs, []);
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.locator('script:not([src])').count(), 0);
    await context.close();
  });

  test('without a session every console page is the sign-in page, and a forged session reads nothing', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const { json } = await adminApi('GET', '/v1/nodes/web-1');
    for (const path of [
      '/',
      '/nodes',
      `/nodes/${json.id}`,
      '/events',
      '/commands',
      '/tokens',
      '/ledger',
      '/signin',
    ]) {
      await page.goto(`${server.adminUrl}${path}`);
      await page.getByLabel('Admin token').waitFor();
      assert.doesNotMatch((await page.locator('body').textContent()) ?? '', /web-1/, path);
    }
    const url = new URL(server.adminUrl);
    await context.addCookies([
      { name: 'muster_session', value: 'A'.repeat(43), domain: url.hostname, path: '/' },
    ]);
    const forged = await page.evaluate(async () => (await fetch('/v1/nodes')).status);
    assert.equal(forged, 401);
    await page.goto(`${server.adminUrl}/nodes`);
    await page.getByLabel('Admin token').waitFor();
    await context.close();
  });

  test('a change without the CSRF defence is refused, from the console origin and from another site', async () => {
    const { context, page } = await signedIn();
    const before = (await adminApi('GET', '/v1/tokens')).json.items.length;
    const bare = await page.evaluate(async () => {
      const res = await fetch('/v1/tokens', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      return res.status;
    });
    assert.equal(bare, 403);

    // Another origin on the same host (ports do not make another site, so the cookie goes along).
    const evil = await serveEvilPage(`${server.adminUrl}/v1/tokens`);
    try {
      const attacker = await context.newPage();
      await attacker.goto(evil.url);
      // The page's form lands on the admin plane: both attempts have been answered by then.
      await attacker.waitForURL(`${server.adminUrl}/v1/tokens`);
      assert.match((await attacker.locator('body').textContent()) ?? '', /"status":\s*(403|415)/);
    } finally {
      await evil.close();
    }
    assert.equal((await adminApi('GET', '/v1/tokens')).json.items.length, before, 'no token was made');
    await context.close();
  });

  test('after sign-out the back button shows no data, and the old cookie gets 401', async () => {
    const { context, page } = await signedIn();
    const cookie = (await context.cookies()).find((c) => c.name === 'muster_session');
    assert.ok(cookie?.httpOnly && cookie.sameSite === 'Strict');
    await page.locator('tr[data-node="web-1"] a').click();
    await page.getByRole('heading', { name: 'web-1' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    await page.goBack();
    await page.getByLabel('Admin token').waitFor();
    assert.doesNotMatch((await page.locator('body').textContent()) ?? '', /web-1|Renewal due/);
    const res = await fetch(`${server.adminUrl}/v1/nodes`, {
      headers: { cookie: `muster_session=${cookie.value}` },
    });
    assert.equal(res.status, 401);
    await context.close();
  });

  test('a server restart: the console says it lost the stream, reconnects, and shows nothing twice', async () => {
    const { context, page } = await signedIn();
    await page.getByRole('link', { name: 'Events' }).click();
    const beforeNote = await adminApi('POST', '/v1/events', { kind: 'note', text: 'before the restart' });
    await page.locator(`li[data-event-id="${beforeNote.json.id}"]`).waitFor();

    const admin = new URL(server.adminUrl).host;
    const agent = new URL(server.agentUrl).host;
    await server.process.stop();
    await page.locator('[data-stream=lost]').waitFor();
    assert.match((await page.locator('[data-stream]').textContent()) ?? '', /Lost the event stream/);

    server = await sandbox.startServer({
      dataDir: server.dataDir,
      listen: agent,
      adminListen: admin,
      args: ['--status-debounce', '1s'],
    });
    await page.locator('[data-stream=live]').waitFor({ timeout: 30_000 });
    const afterNote = await adminApi('POST', '/v1/events', { kind: 'note', text: 'after the restart' });
    await page.locator(`li[data-event-id="${afterNote.json.id}"]`).waitFor();

    const ids = await page
      .locator('.feed li[data-event-id]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id')));
    assert.equal(new Set(ids).size, ids.length, 'every event is shown once');
    assert.equal(await page.locator('.feed .text', { hasText: 'before the restart' }).count(), 1);
    await context.close();
  });
});

/** POST /v1/enroll straight to the agent plane, as a host with its own idea of its facts would. */
function enroll(agentUrl: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${agentUrl}/v1/enroll`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, rejectUnauthorized: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** A page on another origin that tries to make a token with the victim's cookie, two ways. */
async function serveEvilPage(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const script = `
    fetch(${JSON.stringify(target)}, { method: 'POST', credentials: 'include', mode: 'no-cors',
      headers: { 'content-type': 'text/plain' }, body: '{}' }).catch(() => {}).finally(() => {
      const done = document.createElement('p'); done.id = 'done'; document.body.append(done);
      document.forms[0].submit();
    });`;
  const server: Server = createServer((req, res) => {
    if (req.url === '/evil.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      return;
    }
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end(
        `<!doctype html><form method="post" action="${target}" enctype="text/plain"><input name="{}" value=""></form><script src="/evil.js"></script>`,
      );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
