#!/usr/bin/env node
// Takes the README's console screenshots (docs/screenshots/*.png): runs `muster demo` in a
// scratch directory, opens a one-time sign-in link from `muster console link` in Debian's Chromium (playwright-core) and
// photographs each view at 1280×800. Not part of the test suite: run it by hand after `npm run build`.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from '@muster/bench/chromium';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'docs', 'screenshots');
const cwd = mkdtempSync(join(tmpdir(), 'muster-screenshots-'));
const demo = spawn(
  process.execPath,
  [
    join(root, 'packages/cli/dist/main.js'),
    'demo',
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
  ],
  { cwd, stdio: ['ignore', 'pipe', 'inherit'] },
);
let stdout = '';
demo.stdout.on('data', (c) => {
  stdout += c;
});
const adminUrl = await new Promise((resolve, reject) => {
  const timer = setInterval(() => {
    const found = /admin API\s+(http:\/\/\S+)/.exec(stdout)?.[1];
    if (found && /all reporting|reporting so far/.test(stdout)) {
      clearInterval(timer);
      resolve(found);
    }
  }, 100);
  demo.once('exit', (code) => reject(new Error(`muster demo exited with ${code}:\n${stdout}`)));
});
// The demo prints a sign-in link only to a terminal; `muster console link` makes one on request.
const link = execFileSync(
  process.execPath,
  [join(root, 'packages/cli/dist/main.js'), 'console', 'link', '--url', adminUrl],
  { cwd, encoding: 'utf8' },
).trim();
const base = new URL(link).origin;

const browser = await launchChromium();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: join(out, `${name}.png`) });
  await page.goto(link);
  await page.locator('[data-stream=live]').waitFor();
  await page.locator('tr[data-node]').first().waitFor();
  // Let the fleet bar read its heartbeat rate and a few heartbeats land in the charts.
  await page.waitForTimeout(12_000);
  await shot('nodes');

  await page.locator('tr[data-node="web-1"] a').click();
  await page.locator('figure[data-chart=CPU] polyline').waitFor();
  await shot('node');

  await page.getByRole('link', { name: 'Events' }).click();
  await page.getByLabel('Text').fill('Rolling out the new web build to web-1 first.');
  await page.getByRole('button', { name: 'Write the note' }).click();
  await page.getByText('an incident').click();
  await page.getByLabel('Text').fill('db-1 replication lag above 30 s');
  await page.getByRole('button', { name: 'Open the incident' }).click();
  await page.getByRole('button', { name: 'Acknowledge' }).first().waitFor();
  await shot('events');

  await page.getByRole('link', { name: 'Tokens' }).click();
  await page.getByLabel('Profile').fill('web');
  await page.getByLabel('Labels').fill('env=demo, role=frontend');
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.locator('[data-field=agent-line]').waitFor();
  await shot('tokens');

  await page.getByRole('link', { name: 'Ledger' }).click();
  await page.locator('li[data-seq] button').first().click();
  await page.locator('.verdict.good').waitFor();
  await shot('ledger');

  // A signed command, as the demo's operator runs it from the CLI.
  const run = spawn(
    process.execPath,
    [
      join(root, 'packages/cli/dist/main.js'),
      'run',
      '--key',
      join(cwd, '.muster', 'demo-operator.key'),
      '--operator',
      'demo',
      '--target',
      'all',
      '--wait',
      '--url',
      base,
      '--',
      'disk-usage',
      'path=/',
    ],
    { cwd, stdio: 'inherit' },
  );
  await new Promise((resolve) => run.once('exit', resolve));
  await page.getByRole('link', { name: 'Commands' }).click();
  await page.locator('tr[data-command] a').first().click();
  await page.locator('[data-field=stdout]').first().waitFor();
  await shot('command');

  const dark = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
  const darkPage = await dark.newPage();
  await context.storageState().then((s) => dark.addCookies(s.cookies));
  await darkPage.goto(`${base}/nodes`);
  await darkPage.locator('tr[data-node]').first().waitFor();
  await darkPage.waitForTimeout(1500);
  await darkPage.screenshot({ path: join(out, 'nodes-dark.png') });

  const narrow = await browser.newContext({ viewport: { width: 420, height: 800 } });
  await context.storageState().then((s) => narrow.addCookies(s.cookies));
  const narrowPage = await narrow.newPage();
  await narrowPage.goto(`${base}/nodes`);
  await narrowPage.locator('tr[data-node]').first().waitFor();
  await narrowPage.waitForTimeout(1500);
  await narrowPage.screenshot({ path: join(out, 'nodes-narrow.png') });
} finally {
  await browser.close();
  demo.kill('SIGINT');
  await new Promise((resolve) => demo.once('exit', resolve));
  rmSync(cwd, { recursive: true, force: true });
}
console.log(`screenshots written to ${out}`);
