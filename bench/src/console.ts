import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { emit, enroll, makeApplicants, pool, progress, spawnServer } from './support.js';

export interface ConsoleOptions {
  /** Nodes in the store when the node list is first drawn. */
  nodes: number;
  /** Events written per second while frames are measured. */
  eventsPerSec: number;
  durationMs: number;
  db?: string;
}

/**
 * Runs in the page before the console: records when the node list first shows every node, the
 * longest gap between animation frames and every long task (over 50 ms) the browser reports.
 * Injected through the DevTools protocol, so the console's CSP is not loosened for it.
 */
const PROBE = (expected: number) => {
  const w = globalThis as unknown as Record<string, unknown> & typeof globalThis;
  w.__bench = { listShownAt: 0, longestFrame: 0, longTasks: [] as number[], frames: 0, measuring: false };
  const bench = w.__bench as {
    listShownAt: number;
    longestFrame: number;
    longTasks: number[];
    frames: number;
    measuring: boolean;
  };
  new PerformanceObserver((list) => {
    if (bench.measuring) for (const e of list.getEntries()) bench.longTasks.push(e.duration);
  }).observe({ type: 'longtask', buffered: false });
  let last = 0;
  const frame = (t: number) => {
    if (bench.measuring && last) {
      bench.longestFrame = Math.max(bench.longestFrame, t - last);
      bench.frames++;
    }
    last = t;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  new MutationObserver(() => {
    if (bench.listShownAt) return;
    const count = document.querySelector('p.count');
    if (count?.getAttribute('data-count') === String(expected) && document.querySelector('tr[data-node]')) {
      requestAnimationFrame(() => {
        bench.listShownAt ||= performance.now();
      });
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
};

/** The gzipped size of the console's script and stylesheets, as a browser downloads them. */
function bundleBytes(): { gzip: number; raw: number } {
  const dist = join(dirname(createRequire(import.meta.url).resolve('@muster/console/package.json')), 'dist');
  let gzip = 0;
  let raw = 0;
  for (const name of readdirSync(join(dist, 'assets'))) {
    const body = readFileSync(join(dist, 'assets', name));
    raw += body.length;
    gzip += gzipSync(body, { level: 9 }).length;
  }
  const index = readFileSync(join(dist, 'index.html'));
  return { gzip: gzip + gzipSync(index, { level: 9 }).length, raw: raw + index.length };
}

async function measureFrames(
  page: Page,
  write: () => Promise<void>,
): Promise<{ longestFrame: number; longestTask: number; frames: number }> {
  await page.evaluate(() => {
    const b = (globalThis as unknown as { __bench: { measuring: boolean } }).__bench;
    b.measuring = true;
  });
  await write();
  const result = await page.evaluate(() => {
    const b = (
      globalThis as unknown as {
        __bench: { measuring: boolean; longestFrame: number; longTasks: number[]; frames: number };
      }
    ).__bench;
    b.measuring = false;
    const out = { longestFrame: b.longestFrame, longestTask: Math.max(0, ...b.longTasks), frames: b.frames };
    b.longestFrame = 0;
    b.longTasks = [];
    b.frames = 0;
    return out;
  });
  return result;
}

/**
 * The console under load: `nodes` real enrollments in the store, then the time from navigation
 * to the node list showing all of them, then the longest frame while notes stream in at
 * `eventsPerSec`, on the nodes page and on the events page. Goals: under 1 s, no frame over
 * 50 ms, a bundle under 150 KB gzipped.
 */
export async function consoleScenario(opts: ConsoleOptions): Promise<void> {
  const bundle = bundleBytes();
  emit('console', 'bundle_gzip_kb', bundle.gzip / 1024, {
    raw_kb: Math.round(bundle.raw / 1024),
    goal: '< 150',
  });

  const server = await spawnServer(['--enroll-rate', '100000'], opts.db);
  const browser = await launchChromium();
  try {
    const applicants = await makeApplicants(opts.nodes, 'node');
    const { secret } = await server.admin<{ secret: string }>('POST', '/v1/tokens', {
      uses: opts.nodes,
      ttlSec: 3600,
    });
    progress(`enrolling ${opts.nodes} nodes`);
    const enrolled = await pool(applicants, 200, async (a) => {
      await enroll(server, secret, a);
    });
    if (enrolled.failed > 0)
      throw new Error(`${enrolled.failed} enrollments failed: ${String(enrolled.firstError)}`);

    const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    const signIn = await fetch(`${server.adminUrl}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    const cookie = /^muster_session=([^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')?.[1];
    if (!cookie) throw new Error(`could not sign in: ${signIn.status}`);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addCookies([
      { name: 'muster_session', value: cookie, domain: new URL(server.adminUrl).hostname, path: '/' },
    ]);
    const page = await context.newPage();
    await page.addInitScript(PROBE, opts.nodes);

    progress('drawing the node list');
    await page.goto(`${server.adminUrl}/nodes`);
    await page.waitForFunction(
      () => (globalThis as unknown as { __bench: { listShownAt: number } }).__bench.listShownAt > 0,
      null,
      {
        timeout: 60_000,
      },
    );
    const shownAt = await page.evaluate(
      () => (globalThis as unknown as { __bench: { listShownAt: number } }).__bench.listShownAt,
    );
    emit('console', 'node_list_first_render_ms', shownAt, {
      nodes: opts.nodes,
      unit: 'ms from navigation start to every node listed and drawn',
      goal: '< 1000',
    });
    await page.waitForSelector('[data-stream=live]');

    const stream = async () => {
      const started = Date.now();
      let sent = 0;
      const interval = 1000 / opts.eventsPerSec;
      const writers = Array.from({ length: 32 }, async () => {
        for (;;) {
          const due = started + sent * interval;
          if (Date.now() - started >= opts.durationMs) return;
          sent++;
          const wait = due - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          await server.admin('POST', '/v1/events', { kind: 'note', text: `bench note ${sent}` });
        }
      });
      await Promise.all(writers);
      return (sent * 1000) / (Date.now() - started);
    };
    for (const view of ['nodes', 'events'] as const) {
      if (view === 'events') {
        await page.getByRole('link', { name: 'Events' }).click();
        await page.waitForSelector('.feed');
      }
      progress(`streaming ${opts.eventsPerSec} events/s into the ${view} page`);
      let rate = 0;
      const frames = await measureFrames(page, async () => {
        rate = await stream();
      });
      const common = { view, events_per_sec: Math.round(rate), nodes: opts.nodes };
      emit('console', 'longest_frame_ms', frames.longestFrame, {
        ...common,
        frames: frames.frames,
        unit: 'ms, longest gap between animation frames',
        goal: '<= 50',
      });
      emit('console', 'longest_task_ms', frames.longestTask, {
        ...common,
        unit: 'ms, longest task the browser reported over 50 ms (0: none)',
        goal: '0',
      });
    }
  } finally {
    await browser.close();
    await server.stop();
  }
}
