import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { NodeView } from '@muster/proto';
import { REPO_ROOT, waitFor } from '../support/processes.js';
import { Sandbox } from '../support/sandbox.js';

// The README's first hour, re-run from a fresh clone of the commit under test: `npm ci`, the
// PATH section, `npm start`, then the demo's commands exactly as the README prints them. The
// commands are read from the README itself, so the test fails when the README drifts.

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
/** `npm ci` builds everything, and on Node 20 compiles SQLite when no prebuilt binary can be fetched. */
const INSTALL_TIMEOUT_MS = 20 * 60_000;
const COMMAND_TIMEOUT_MS = 120_000;

/** The command lines of the first ```sh block after `marker`, without comments. */
function shBlockAfter(marker: string): string[] {
  const at = README.indexOf(marker);
  assert.ok(at >= 0, `the README no longer says ${JSON.stringify(marker)}`);
  const block = /```sh\n([\s\S]*?)```/.exec(README.slice(at));
  assert.ok(block, `no sh block after ${JSON.stringify(marker)}`);
  return block[1]!
    .split('\n')
    .map((line) => line.replace(/\s+#\s.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** Whether any process of the group led by `pid` is still running. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Files the README links to or names by path: each must be in the repository. */
function namedFiles(): string[] {
  const links = [...README.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((href) => !/^[a-z]+:/.test(href) && !href.startsWith('#'));
  const paths = [...README.matchAll(/`((?:\.ci|bench|docs|packages|scripts|test)\/[^`\s]*)`/g)].map(
    (m) => m[1]!,
  );
  return [...new Set([...links, ...paths].map((p) => p.replace(/[#?].*$/, '').replace(/\/$/, '')))];
}

test('every file the README links to or names is in the repository', () => {
  const tracked = new Set(
    execFileSync('git', ['ls-files'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\n')
      .flatMap((file) => file.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'))),
  );
  const named = namedFiles();
  assert.ok(named.includes('LICENSE') && named.includes('docs/screenshots/nodes.png'), named.join(' '));
  // Build output (dist/) is not tracked: it must at least be there after `npm install`.
  assert.deepEqual(
    named.filter((p) => !tracked.has(p) && !(p.includes('/dist/') && existsSync(join(REPO_ROOT, p)))),
    [],
    'the README names files that are not in the repository',
  );
  assert.equal(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).license, 'Apache-2.0');
  assert.match(
    readFileSync(join(REPO_ROOT, 'LICENSE'), 'utf8'),
    /Apache License\s+Version 2\.0, January 2004/,
  );
});

test('no README example runs npx muster (outside a clone that fetches another package)', () => {
  const examples = [...README.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n'));
  assert.deepEqual(
    examples.filter((line) => /\bnpx muster\b/.test(line)),
    [],
  );
});

describe('the README walkthrough from a fresh clone', () => {
  const sandbox = new Sandbox();
  const clone = join(sandbox.tempDir('clone'), 'muster');
  const prefix = sandbox.tempDir('npm-prefix');
  let demo: ChildProcess | undefined;
  let demoOut = '';
  let adminUrl = '';

  /** The environment a new user's shell has: none of this test run's npm or Muster settings. */
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith('MUSTER_') && !key.startsWith('npm_')),
    );
    return {
      ...clean,
      NPM_CONFIG_PREFIX: prefix,
      PATH: `${join(prefix, 'bin')}:${process.env.PATH}`,
      ...extra,
    };
  };
  /** Runs one README line in a shell in the clone, as a user would type it. */
  const sh = (line: string, extra: Record<string, string> = {}, timeoutMs = COMMAND_TIMEOUT_MS) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('sh', ['-c', line], {
        cwd: clone,
        env: env(extra),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  const ok = async (line: string, extra: Record<string, string> = {}, timeoutMs?: number) => {
    const run = await sh(line, extra, timeoutMs);
    assert.equal(run.code, 0, `${line}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`);
    return run.stdout;
  };

  before(
    async () => {
      const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
      execFileSync('git', ['clone', '--quiet', REPO_ROOT, clone]);
      execFileSync('git', ['checkout', '--quiet', '--detach', head], { cwd: clone });
      await ok('npm ci --no-audit --no-fund', {}, INSTALL_TIMEOUT_MS);
    },
    { timeout: INSTALL_TIMEOUT_MS + 60_000 },
  );
  after(async () => {
    if (demo && groupAlive(demo.pid!)) process.kill(-demo.pid!, 'SIGKILL');
    await sandbox.cleanup();
  });

  test('the PATH section puts the clone’s own muster on PATH', async () => {
    for (const line of shBlockAfter('### Putting `muster` on your PATH')) await ok(line);
    const found = (await ok('command -v muster')).trim();
    assert.equal(realpathSync(found), join(realpathSync(clone), 'packages', 'cli', 'bin', 'muster.js'));
  });

  test('npm start runs the demo: three nodes report', { timeout: 180_000 }, async () => {
    const first = shBlockAfter('## Two commands')[0]!;
    assert.match(first, /\bnpm start\b/, 'the README starts the demo with npm start');
    // Ports chosen by the OS, so the test does not depend on 8080 and 8443 being free.
    demo = spawn('npm', ['start', '--', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
      cwd: clone,
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    demo.stdout!.setEncoding('utf8').on('data', (c: string) => (demoOut += c));
    demo.stderr!.setEncoding('utf8').on('data', (c: string) => (demoOut += c));
    adminUrl = await waitFor(
      'the demo to print its admin API',
      async () => {
        assert.equal(demo!.exitCode, null, `the demo exited:\n${demoOut}`);
        return /^ {2}admin API +(http:\/\/127\.0\.0\.1:\d+)$/m.exec(demoOut)?.[1];
      },
      { timeoutMs: 120_000 },
    );
    assert.ok(existsSync(join(clone, '.muster', 'admin.token')), 'the demo keeps its data in ./.muster');
    await waitFor(
      'the three demo nodes to report',
      async () => {
        const nodes = JSON.parse(await ok('muster nodes ls --json', { MUSTER_URL: adminUrl })) as NodeView[];
        return nodes.length === 3 && nodes.every((n) => n.lastSeenAt !== null) ? nodes : undefined;
      },
      { timeoutMs: 60_000 },
    );
  });

  test('the demo’s commands, as the README prints them, work against it', { timeout: 180_000 }, async () => {
    assert.ok(adminUrl, 'the demo is running');
    const lines = shBlockAfter('While it runs, in another terminal');
    assert.ok(lines.length >= 4, lines.join('\n'));
    const seen: string[] = [];
    for (const line of lines) {
      assert.match(line, /^muster /, 'each example runs muster from the PATH');
      // Only the address differs from a user's run: the demo listens on a port the OS chose.
      const out = await ok(line, { MUSTER_URL: adminUrl });
      seen.push(line);
      if (/^muster nodes ls\b/.test(line))
        for (const name of ['web-1', 'db-1', 'batch-1'])
          assert.match(out, new RegExp(`^${name}\\s+\\w+`, 'm'));
      if (/^muster token create\b/.test(line))
        assert.match(out, /muster agent --server https:\/\/\S+ --ca-pin sha256:/);
    }
    assert.ok(
      seen.some((l) => /^muster nodes ls\b/.test(l)),
      'the README lists the nodes',
    );
    assert.ok(
      seen.some((l) => /^muster token create\b/.test(l)),
      'the README makes a join token',
    );
    assert.ok(
      seen.some((l) => /^muster run\b.*--wait -- uptime$/.test(l)),
      'the README runs a signed command and waits for it',
    );
  });

  test('Ctrl-C stops the demo cleanly', { timeout: 60_000 }, async () => {
    assert.ok(demo && demo.exitCode === null && demo.signalCode === null, 'the demo is running');
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      demo!.once('close', (code, signal) => resolve([code, signal])),
    );
    // A terminal's Ctrl-C reaches the whole foreground process group: npm and the demo.
    process.kill(-demo.pid!, 'SIGINT');
    const [code, signal] = await exited;
    // npm re-raises the interrupt on itself once its script has ended; the demo says it stopped.
    assert.ok(
      code === 0 || code === 130 || signal === 'SIGINT',
      `npm start ended: ${code} ${signal}\n${demoOut}`,
    );
    assert.match(demoOut, /stopping/, demoOut);
    await waitFor('every demo process to end', async () => (groupAlive(demo!.pid!) ? undefined : true), {
      timeoutMs: 10_000,
    });
  });
});
