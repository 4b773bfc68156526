import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import WebSocket from 'ws';
import { launchChromium, watchForInjection } from '../support/browser.js';
import { command, dataDirRoot, makeOperator, signedPolicy } from '../support/commands.js';
import { agentArgsFromJoinLine } from '../support/fleet.js';
import { type MusterProcess, waitFor } from '../support/processes.js';
import { Sandbox, type ServerUnderTest } from '../support/sandbox.js';

/** `node:<uuid>` or `command:<uuid>` as the API carries them: what the console must never show. */
const RAW_REF = /\b(node|command):[0-9a-f]{8}-[0-9a-f]{4}-/;

/** Set MUSTER_SCREENSHOTS=DIR to keep a picture of each page these tests look at. */
async function shot(page: Page, name: string): Promise<void> {
  const dir = process.env.MUSTER_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

/** What an operator notices first in the console, each fixed (issue 11, "Console"). */
describe('the console in the first hour, in a real Chromium', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let adminToken: string;
  let browser: Browser;
  const agents = new Map<string, MusterProcess>();
  const ops = makeOperator('ops');

  /**
   * A fresh one-time sign-in link for this server, the way an operator gets one when the
   * server's stdout is not a terminal (as here): `muster console link`.
   */
  async function signInLink(): Promise<string> {
    const made = await sandbox.run(['console', 'link', ...server.adminFlags]);
    const link = made.stdout.trim();
    assert.match(
      link,
      /^http:\/\/\S+#code=\S+$/,
      `muster console link printed a sign-in link:\n${made.stderr}`,
    );
    return link;
  }

  async function adminApi(method: string, path: string, body?: unknown): Promise<any> {
    const res = await fetch(`${server.adminUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  async function startAgent(name: string): Promise<string> {
    const token = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      name,
      '--profile',
      'web',
      ...server.adminFlags,
    ]);
    const dataDir = sandbox.tempDir(`agent-${name}`);
    agents.set(
      name,
      sandbox.spawn([...agentArgsFromJoinLine(token.agentCommand, server.agentUrl), '--data-dir', dataDir]),
    );
    return dataDir;
  }

  async function signedIn(
    options: Parameters<Browser['newContext']>[0] = {},
  ): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
    const page = await context.newPage();
    watchForInjection(page);
    await page.goto(`${server.adminUrl}/`);
    await page.getByLabel('Admin token').fill(adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-stream=live]').waitFor();
    return { context, page };
  }

  /** Runs a signed command and waits for every node's answer. */
  async function run(nodes: string[], action: string): Promise<string> {
    const signed = command(ops, { nodes }, action);
    await adminApi('POST', '/v1/commands', signed);
    await waitFor(`${action} to be answered`, async () => {
      const view = await adminApi('GET', `/v1/commands/${signed.command.id}`);
      return view.targets.every((t: any) => t.receipt) ? true : undefined;
    });
    return signed.command.id;
  }

  let web1Dir: string;
  let web2Dir: string;
  before(async () => {
    server = await sandbox.startServer({ args: ['--status-debounce', '1s'] });
    adminToken = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    web1Dir = await startAgent('web-1');
    web2Dir = await startAgent('web-2');
    await waitFor('both agents to report', async () => {
      const { items } = await adminApi('GET', '/v1/nodes');
      return items.filter((n: any) => n.lastSeenAt !== null).length === 2 ? true : undefined;
    });
    const policy = {
      version: 1,
      operators: [{ name: 'ops', publicKey: ops.publicKey, profiles: ['*'] }],
      profiles: {
        web: {
          actions: {
            hello: { argv: ['echo', 'hello'], timeoutSec: 5, maxOutputBytes: 4096 },
            broken: {
              argv: [
                '/bin/sh',
                '-c',
                'echo partial; echo "first problem" >&2; echo "second problem" >&2; exit 3',
              ],
              timeoutSec: 5,
              maxOutputBytes: 4096,
            },
          },
        },
      },
    };
    await adminApi('POST', '/v1/policy', signedPolicy(policy, dataDirRoot(server.dataDir).privateKey));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await sandbox.cleanup();
  });

  test('a sign-in link pasted into a tab already showing the console signs in, and the code leaves the URL', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.adminUrl}/`);
    await page.getByLabel('Admin token').waitFor();
    // Only the fragment changes: the browser does not load the page again.
    await page.goto(`${server.adminUrl}/#code=not-a-code`);
    await page.getByText(/links work once/).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the refused code is wiped from the address bar');
    await page.goto(await signInLink());
    await page.locator('tr[data-node="web-1"]').waitFor();
    assert.equal(new URL(page.url()).pathname, '/nodes');
    assert.equal(new URL(page.url()).hash, '', 'the code is wiped from the address bar');
    await context.close();
  });

  test('events, timelines and the ledger name nodes and commands and link to them', async () => {
    const web1 = await adminApi('GET', '/v1/nodes/web-1');
    const id = await run(['web-1'], 'hello');
    const { context, page } = await signedIn();
    await page.getByRole('link', { name: 'Events' }).click();
    const feed = page.locator('.feed');
    const answeredRow = feed.locator('li[data-kind="command.answered"]').first();
    const commandLink = answeredRow.locator(`a[href="/commands/${id}"]`);
    await commandLink.waitFor();
    assert.equal((await commandLink.textContent())?.trim(), `hello ${id.slice(0, 8)}`);
    const nodeLink = answeredRow.locator('.actor a');
    assert.equal(await nodeLink.textContent(), 'web-1');
    assert.equal(await nodeLink.getAttribute('href'), `/nodes/${web1.id}`);
    await feed.locator('li[data-kind="node.enrolled"] .text', { hasText: 'web-1 enrolled as web' }).waitFor();
    assert.doesNotMatch((await feed.textContent()) ?? '', RAW_REF);
    await shot(page, 'events');

    // The node's name leads to its page, whose timeline names things the same way.
    await nodeLink.click();
    await page.getByRole('heading', { name: 'web-1' }).waitFor();
    await page.locator('section[aria-labelledby=timeline-title] li[data-kind="node.enrolled"]').waitFor();
    assert.doesNotMatch(
      (await page.locator('section[aria-labelledby=timeline-title]').textContent()) ?? '',
      RAW_REF,
    );

    await page.getByRole('link', { name: 'Ledger' }).click();
    const entries = page.locator('ol.entries');
    await entries.locator('li', { hasText: 'command.issued' }).first().waitFor();
    const issued = entries.locator('li', { hasText: 'command.issued' }).first();
    assert.equal(
      (await issued.locator(`a[href="/commands/${id}"]`).textContent())?.trim(),
      `hello ${id.slice(0, 8)}`,
    );
    const enrolled = entries.locator('li', { hasText: 'node.enrolled' }).last();
    assert.match((await enrolled.locator('a[href^="/nodes/"]').textContent()) ?? '', /^web-[12]$/);
    assert.doesNotMatch((await entries.textContent()) ?? '', RAW_REF);
    await shot(page, 'ledger');
    await issued.locator(`a[href="/commands/${id}"]`).click();
    await page.getByRole('heading', { name: 'hello' }).waitFor();
    await context.close();
  });

  test('times carry their zone, and their date when it is not today', async () => {
    // A browser in India (UTC+5:30) with a German locale: neither may leak into how times read.
    const zone = { timezoneId: 'Asia/Kolkata', locale: 'de-DE' };
    const kolkata = (iso: string) => new Date(Date.parse(iso) + 330 * 60_000).toISOString();
    const { context, page } = await signedIn(zone);
    await page.getByRole('link', { name: 'Events' }).click();
    const row = page.locator('.feed li[data-event-id]').first();
    await row.waitFor();
    const eventId = await row.getAttribute('data-event-id');
    const local = kolkata((await row.locator('time').getAttribute('datetime'))!);
    const today = kolkata(new Date().toISOString()).slice(0, 10) === local.slice(0, 10);
    assert.equal(
      (await row.locator('time').textContent())?.trim(),
      `${today ? '' : `${local.slice(0, 10)} `}${local.slice(11, 19)} UTC+5:30`,
    );
    await shot(page, 'events-kolkata');

    // The node page words its times the same way: a certificate a day away shows its date.
    await page.getByRole('link', { name: 'Nodes' }).click();
    await page.locator('tr[data-node="web-1"] a').click();
    const expires = page.locator('dt:has-text("Expires") + dd');
    await expires.waitFor();
    const web1 = await adminApi('GET', '/v1/nodes/web-1');
    const notAfter = kolkata(web1.cert.notAfter);
    assert.match(
      (await expires.textContent()) ?? '',
      new RegExp(`^${notAfter.slice(0, 10)} ${notAfter.slice(11, 19)} UTC\\+5:30 \\(in `),
    );
    await context.close();

    // Two days on, the same events are not today's: each row shows its date.
    const later = await browser.newContext({ ...zone, viewport: { width: 1280, height: 800 } });
    const laterPage = await later.newPage();
    await laterPage.clock.setFixedTime(Date.now() + 2 * 86_400_000);
    await laterPage.goto(`${server.adminUrl}/`);
    await laterPage.getByLabel('Admin token').fill(adminToken);
    await laterPage.getByRole('button', { name: 'Sign in' }).click();
    await laterPage.getByRole('link', { name: 'Events' }).click();
    const oldRow = laterPage.locator(`.feed li[data-event-id="${eventId}"]`);
    await oldRow.waitFor();
    assert.equal(
      (await oldRow.locator('time').textContent())?.trim(),
      `${local.slice(0, 10)} ${local.slice(11, 19)} UTC+5:30`,
    );
    assert.equal(await oldRow.locator('time .date').textContent(), local.slice(0, 10));
    await shot(laterPage, 'events-two-days-later');
    await later.close();
  });

  test('kind names break only between their words', async () => {
    // A long kind: a second channel with web-1's identity is recorded as security.duplicate_channel.
    await openAndClose(server.agentUrl, identityIn(web1Dir));
    const { context, page } = await signedIn({ viewport: { width: 900, height: 800 } });
    await page.getByRole('link', { name: 'Events' }).click();
    await page.locator('.feed li[data-kind="security.duplicate_channel"]').first().waitFor();
    // Every kind cell that wraps does so after "." or "_", never inside a word.
    const kinds = page.locator('.feed .kind');
    const breaks = await kinds.evaluateAll((cells) =>
      cells.map((cell) => {
        const text = cell.textContent ?? '';
        const lines: string[] = [];
        const range = (globalThis as any).document.createRange();
        let top: number | undefined;
        let line = '';
        const node = [...(cell as any).childNodes].filter((n: any) => n.nodeType === 3);
        for (const t of node) {
          for (let i = 0; i < (t.textContent ?? '').length; i++) {
            range.setStart(t, i);
            range.setEnd(t, i + 1);
            const y = Math.round(range.getBoundingClientRect().top);
            if (top !== undefined && y > top + 2) {
              lines.push(line);
              line = '';
            }
            top = y;
            line += t.textContent![i];
          }
        }
        lines.push(line);
        return { text, lines };
      }),
    );
    const wrapped = breaks.filter((b) => b.lines.length > 1);
    assert.ok(wrapped.length > 0, `some kind is too long for its column: ${JSON.stringify(breaks)}`);
    for (const { text, lines } of wrapped) {
      for (const l of lines.slice(0, -1))
        assert.match(l, /[._]$/, `${text} broke as ${JSON.stringify(lines)}`);
    }
    await shot(page, 'events-narrow');
    await context.close();
  });

  test("a node's page counts its recent security events in what needs attention", async () => {
    const { context, page } = await signedIn();
    const web2 = await adminApi('GET', '/v1/nodes/web-2');
    await page.locator(`a[href="/nodes/${web2.id}"]`).first().click();
    await page.getByRole('heading', { name: 'web-2' }).waitFor();
    await page.getByText('Renewal due').waitFor();
    assert.equal(await page.locator('[data-attention^="security."]').count(), 0);

    // web-2's identity, copied to other hosts: each channel opened with it takes over the last.
    const copies: WebSocket[] = [];
    for (let i = 0; i < 3; i++) copies.push(await openChannel(server.agentUrl, identityIn(web2Dir)));
    for (const ws of copies) ws.close();
    const wanted = `node=${web2.id}&kind=security.duplicate_channel`;
    const seen = await waitFor('the duplicate channels to be recorded', async () => {
      const { items } = await adminApi('GET', `/v1/events?${wanted}`);
      return items.length >= 3 ? items.length : undefined;
    });
    const line = page.locator('[data-attention="security.duplicate_channel"]');
    await line.waitFor();
    assert.match((await line.textContent()) ?? '', /critical/);
    await waitFor(`the page to count the ${seen} recorded`, async () => {
      const times = Number(/(\d+) times in the last 24 h/.exec((await line.textContent()) ?? '')?.[1]);
      return times >= seen ? true : undefined;
    });
    assert.equal(await page.getByText('Nothing needs attention.').count(), 0);

    // Read afresh, the page says the same.
    await page.reload();
    await page.getByRole('heading', { name: 'web-2' }).waitFor();
    await page.locator('[data-attention="security.duplicate_channel"]').waitFor();
    assert.equal(await page.getByText('Nothing needs attention.').count(), 0);
    await shot(page, 'node-security');
    await context.close();
  });

  test('the node list is as tall as its rows, not a large empty box', async () => {
    const { context, page } = await signedIn();
    await page.locator('tr[data-node="web-2"]').waitFor();
    const box = await page.locator('.scroller').evaluate((el) => ({
      box: el.getBoundingClientRect().height,
      table: el.querySelector('table')!.getBoundingClientRect().height,
    }));
    assert.ok(box.box <= box.table + 4, `the list's box (${box.box}px) fits its table (${box.table}px)`);
    await shot(page, 'nodes');
    await context.close();
  });

  test('a failed command shows stdout, its SHA-256 and stderr, each under its own caption', async () => {
    const { context, page } = await signedIn();
    const id = await run(['web-1'], 'broken');
    await page.goto(`${server.adminUrl}/commands/${id}`);
    await page.locator('tr[data-node="web-1"] .pill', { hasText: 'failed' }).waitFor();
    const captionOf = (field: string) =>
      page
        .locator(`[data-field="${field}"]`)
        .evaluate((el) => el.closest('figure')?.querySelector('figcaption')?.textContent ?? null);
    assert.match((await captionOf('stdout')) ?? '', /^Standard output/);
    assert.match((await captionOf('stderr')) ?? '', /^Standard error/);
    assert.equal(
      (await page.locator('[data-field="stderr"]').textContent())?.trim(),
      'first problem\nsecond problem',
    );
    const hash = page.locator('[data-output="stdout-sha256"]');
    assert.match((await hash.locator('figcaption').textContent()) ?? '', /SHA-256/);
    assert.match((await hash.locator('code').textContent()) ?? '', /^[0-9a-f]{64}$/);
    assert.doesNotMatch((await hash.textContent()) ?? '', /problem/);
    await shot(page, 'command-failed');
    await context.close();
  });
});

/** The key, certificate and CA an agent keeps in its data dir: what a copied disk would carry. */
function identityIn(dataDir: string): { key: string; cert: string; ca: string } {
  return {
    key: readFileSync(join(dataDir, 'node.key'), 'utf8'),
    cert: readFileSync(join(dataDir, 'node.pem'), 'utf8'),
    ca: readFileSync(join(dataDir, 'ca.pem'), 'utf8'),
  };
}

/** Opens a channel with a node's identity and waits until the server speaks on it. */
async function openChannel(agentUrl: string, identity: { key: string; cert: string; ca: string }) {
  const ws = new WebSocket(`${agentUrl.replace('https:', 'wss:')}/v1/agent/channel`, identity);
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('close', (code) => reject(new Error(`the channel closed (${code}) before the server spoke`)));
  });
  return ws;
}

async function openAndClose(agentUrl: string, identity: { key: string; cert: string; ca: string }) {
  const ws = await openChannel(agentUrl, identity);
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
}
