import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { createServer, get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MUSTER_VERSION, type TokenCreated, type TokenView } from '@muster/proto';
import { assertHealthy, waitForNode } from '../support/fleet.js';
import { REPO_ROOT, waitFor } from '../support/processes.js';
import { assertNoStackTrace, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// `muster token create --install` as an operator uses it: the package built by `npm run
// package`, a real `muster server` serving it, and the printed line pasted into a real shell
// (Debian's sh, curl, sha256sum) in an empty directory, the way a new host would run it.

/** A run of the installer line: a shell reading the line on stdin, as if it were pasted. */
interface Installer {
  child: ChildProcess;
  dir: string;
  output(): string;
  exited: Promise<number | null>;
}

describe('the one-line installer (muster token create --install)', () => {
  const sandbox = new Sandbox();
  const runs: Installer[] = [];
  let pkg: string;
  let server: ServerUnderTest;
  /** Another control plane, with its own CA, serving a package whose bundle was changed after the build. */
  let tampered: ServerUnderTest;

  before(
    async () => {
      pkg = sandbox.tempDir('package');
      const changed = sandbox.tempDir('tampered-package');
      // The servers first: they read the package at each request, so it may be built after.
      [server, tampered] = await Promise.all([
        sandbox.startServer({ args: ['--package-dir', pkg] }),
        // Logging every request, so the test can see what a refused installer asked it for.
        sandbox.startServer({ args: ['--package-dir', changed, '--log-level', 'info'] }),
      ]);
      const started = Date.now();
      const build = spawn(
        process.execPath,
        [join(REPO_ROOT, 'scripts/package.mjs'), '--out', pkg, '--no-deb'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let log = '';
      build.stdout!.setEncoding('utf8').on('data', (c: string) => (log += c));
      build.stderr!.setEncoding('utf8').on('data', (c: string) => (log += c));
      const code = await new Promise<number | null>((resolve, reject) => {
        build.once('error', reject);
        build.once('close', resolve);
      });
      assert.equal(code, 0, `scripts/package.mjs failed:\n${log}`);
      console.log(`# packaged in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      // The bundle gets a line after the build, one that would leave a mark if it ever ran;
      // the executable is the built one (a link, to spare copying 120 MiB).
      copyFileSync(join(pkg, 'manifest.json'), join(changed, 'manifest.json'));
      copyFileSync(join(pkg, 'muster-agent.cjs'), join(changed, 'muster-agent.cjs'));
      appendFileSync(
        join(changed, 'muster-agent.cjs'),
        '\nrequire("node:fs").writeFileSync("TAMPERED-AGENT-RAN", "");\n',
      );
      symlinkSync(join(pkg, 'muster-agent'), join(changed, 'muster-agent'));
    },
    { timeout: 240_000 },
  );
  after(async () => {
    for (const run of runs) if (run.child.exitCode === null && run.child.pid) kill(run.child.pid);
    await sandbox.cleanup();
  });

  function kill(pid: number): void {
    try {
      process.kill(-pid, 'SIGKILL'); // the shell's whole process group: the agent it became, the watcher
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  /** Pastes `line` into `sh` in a fresh directory, with only what a bare host has on PATH (and node, for the bundle). */
  function paste(line: string, purpose: string): Installer {
    const dir = sandbox.tempDir(purpose);
    const child = spawn('/bin/sh', ['-s'], {
      cwd: dir,
      detached: true,
      env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: dir },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    child.stdin!.end(`${line}\n`);
    const run = { child, dir, output: () => output, exited };
    runs.push(run);
    return run;
  }

  async function tokenWithInstaller(
    on: ServerUnderTest,
    args: string[],
  ): Promise<TokenCreated & { installCommand: string }> {
    return sandbox.json(['token', 'create', '--install', ...args, ...on.adminFlags]);
  }

  /** A GET over TLS that trusts nothing in particular: what anyone can fetch from the agent plane. */
  function get(url: string): Promise<string> {
    return new Promise((resolve, reject) => {
      httpsGet(url, { rejectUnauthorized: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
  }

  /** `METHOD PATH` of each request a server logged (at --log-level info). */
  function requestLog(on: ServerUnderTest): string[] {
    return [...`${on.process.stdout}${on.process.stderr}`.matchAll(/"method":"(\w+)","path":"([^"]*)"/g)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
  }

  async function usesLeft(on: ServerUnderTest, id: string): Promise<number> {
    const tokens = await sandbox.json<TokenView[]>(['token', 'ls', ...on.adminFlags]);
    return tokens.find((t) => t.id === id)!.usesLeft;
  }

  /** Waits for the installed node to report, then checks what the host shows: files, modes, argv. */
  async function assertInstalled(run: Installer, name: string, secret: string, file: string): Promise<void> {
    // The token file lives from before the agent starts until the node holds its identity (at
    // least the watcher's first second); every time it is seen, it is its owner's alone.
    const token = join(run.dir, 'muster-agent', 'join-token');
    const modes = new Set<number>();
    const watch = setInterval(() => {
      const seen = statSync(token, { throwIfNoEntry: false });
      if (seen) modes.add(seen.mode & 0o777);
    }, 20);
    try {
      const node = await waitForNode(
        sandbox,
        server,
        name,
        'reports its health',
        (n) => n.lastSeenAt !== null && n.status !== 'offline',
      );
      assertHealthy(node);
      assert.equal(node.facts.agentVersion, MUSTER_VERSION);
      await waitFor('the spent join token to be removed', async () => (existsSync(token) ? undefined : true));
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- installer output ---\n${run.output()}`);
    } finally {
      clearInterval(watch);
    }
    assert.deepEqual(
      [...modes].map((m) => m.toString(8)),
      ['600'],
      'the join token file was never seen, or seen with another mode',
    );
    const installed = join(run.dir, 'muster-agent');
    assert.equal(statSync(installed).mode & 0o777, 0o700);
    assert.equal(statSync(join(installed, 'state')).mode & 0o777, 0o700);
    assert.ok(existsSync(join(installed, 'state', 'node.key')), 'the key is not in muster-agent/state');
    assert.deepEqual(readdirSync(installed).sort(), ['ca.pem', 'install.sh', file, 'state'].sort());

    // No process on this machine has the token in its argv; the agent has the file's path.
    const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
    assert.equal(ps.status, 0, ps.stderr);
    assert.ok(!ps.stdout.includes(secret), 'the join token is in some process argv');
    const agent = ps.stdout.split('\n').find((l) => l.includes(`${installed}/${file} --server `));
    assert.ok(agent, `no agent process for ${installed}:\n${ps.stdout}`);
    assert.match(agent, new RegExp(` --token-file ${token} --data-dir ${installed}/state$`));
    assert.match(
      run.output(),
      new RegExp(`muster install: ${file.replace('.', '\\.')} verified \\(SHA-256 [0-9a-f]{64}\\)`),
    );
  }

  test('the printed line installs the executable (the default), which enrolls and reports ok; the token is in no argv', async () => {
    const shown = await sandbox.run([
      'token',
      'create',
      '--install',
      '--name',
      'installed-exe',
      ...server.adminFlags,
    ]);
    assert.equal(shown.code, 0, describeResult(shown));
    assert.match(shown.stdout, /fetches the agent executable \(needs nothing\)/);
    const line = /^ {2}(printf '%s' '(mjt_[A-Za-z0-9_-]+)' \| sh -c .*)$/m.exec(shown.stdout);
    assert.ok(line, `no installer line in:\n${shown.stdout}`);
    assert.ok(line[1]!.includes(`u=${server.agentUrl}/v1/install;`), 'the line names another server');
    const run = paste(line[1]!, 'host-exe');
    await assertInstalled(run, 'installed-exe', line[2]!, 'muster-agent');
    kill(run.child.pid!);
  });

  test('--install-agent bundle installs the single-file agent, which runs on the host node', async () => {
    const token = await tokenWithInstaller(server, [
      '--install-agent',
      'bundle',
      '--name',
      'installed-bundle',
    ]);
    const run = paste(token.installCommand, 'host-bundle');
    await assertInstalled(run, 'installed-bundle', token.secret, 'muster-agent.cjs');
    kill(run.child.pid!);
  });

  test('a download whose SHA-256 is not the manifest’s is refused before anything runs, and the token stays unused', async () => {
    const token = await tokenWithInstaller(tampered, ['--install-agent', 'bundle', '--name', 'tampered-1']);
    const run = paste(token.installCommand, 'host-tampered');
    const code = await run.exited;
    const output = run.output();
    assert.equal(code, 1, output);
    assert.match(
      output,
      /^muster install: muster-agent\.cjs from https:\/\/\S+ has SHA-256 [0-9a-f]{64}, but the manifest says [0-9a-f]{64}: refusing to run it; nothing was installed or started$/m,
    );
    assertNoStackTrace(output);
    const installed = join(run.dir, 'muster-agent');
    assert.deepEqual(readdirSync(installed).sort(), ['ca.pem', 'install.sh'], 'something was left installed');
    assert.ok(!existsSync(join(run.dir, 'TAMPERED-AGENT-RAN')), 'the tampered agent ran');
    assert.equal(await usesLeft(tampered, token.id), 1);
    const nodes = await sandbox.json<{ name: string }[]>(['nodes', 'ls', ...tampered.adminFlags]);
    assert.deepEqual(nodes, []);
  });

  test('a server whose CA is not the pinned one is refused before anything but its CA certificate is fetched', async () => {
    const token = await tokenWithInstaller(server, ['--name', 'misdirected-1']);
    // The same line, pointed at the other control plane (as a hijacked name or address would).
    const line = token.installCommand.replaceAll(server.agentUrl, tampered.agentUrl);
    assert.notEqual(line, token.installCommand);
    const logged = requestLog(tampered).length;
    const run = paste(line, 'host-misdirected');
    const code = await run.exited;
    assert.equal(code, 1, run.output());
    assert.match(
      run.output(),
      /^muster install: the server at https:\/\/\S+ does not present the fleet CA this line pins \(sha256 [0-9a-f]{64}\); refusing it, nothing else was fetched$/m,
    );
    assert.deepEqual(
      readdirSync(join(run.dir, 'muster-agent')),
      [],
      'something from the wrong server was kept',
    );
    // What the wrong server was asked for, from its request log: its CA certificate, and nothing after.
    await waitFor('the wrong server to log the request', async () =>
      requestLog(tampered).length > logged ? true : undefined,
    );
    assert.deepEqual(requestLog(tampered).slice(logged), ['GET /v1/install/ca.pem']);
    assert.equal(await usesLeft(server, token.id), 1);
  });

  test('an impostor that serves the fleet CA certificate but holds no certificate from it gets no further than that', async () => {
    const token = await tokenWithInstaller(server, ['--name', 'impostor-1']);
    // The CA certificate is public: an impostor can copy it, and so pass the hash check.
    const caPem = await get(`${server.agentUrl}/v1/install/ca.pem`);
    const keys = sandbox.tempDir('impostor');
    const cert = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(keys, 'key.pem'),
        '-out',
        join(keys, 'cert.pem'),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(cert.status, 0, `openssl req: ${cert.stderr}`);
    const asked: string[] = [];
    const impostor = createServer(
      { key: readFileSync(join(keys, 'key.pem')), cert: readFileSync(join(keys, 'cert.pem')) },
      (req, res) => {
        asked.push(`${req.method} ${req.url}`);
        res.end(req.url === '/v1/install/ca.pem' ? caPem : 'touch IMPOSTOR-RAN\n');
      },
    );
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const port = (impostor.address() as AddressInfo).port;
      const line = token.installCommand.replaceAll(server.agentUrl, `https://127.0.0.1:${port}`);
      const run = paste(line, 'host-impostor');
      const code = await run.exited;
      assert.equal(code, 1, run.output());
      assert.match(
        run.output(),
        /^muster install: could not fetch install\.sh from https:\/\/\S+ over TLS that trusts only the fleet CA$/m,
      );
      assert.deepEqual(asked, ['GET /v1/install/ca.pem'], 'the impostor was asked for more than the CA');
      assert.deepEqual(readdirSync(join(run.dir, 'muster-agent')), ['ca.pem']);
      assert.ok(!existsSync(join(run.dir, 'IMPOSTOR-RAN')));
      assert.equal(await usesLeft(server, token.id), 1);
    } finally {
      await new Promise((resolve) => impostor.close(resolve));
    }
  });

  test('without a package on the server, --install makes no token and says how to build one; a bad --install-agent is a usage error', async () => {
    const bare = await sandbox.startServer({ args: ['--package-dir', sandbox.tempDir('empty-package')] });
    const refused = await sandbox.run(['token', 'create', '--install', ...bare.adminFlags]);
    assert.equal(refused.code, 1, describeResult(refused));
    assert.match(
      refused.stderr,
      /^muster token create: no agent package on this server; build it with "npm run package".* \(404\)$/m,
    );
    assertNoStackTrace(refused.stderr);
    assert.deepEqual(await sandbox.json(['token', 'ls', ...bare.adminFlags]), []);

    const tokens = (await sandbox.json<TokenView[]>(['token', 'ls', ...server.adminFlags])).length;
    const usage = await sandbox.run(['token', 'create', '--install-agent', 'rpm', ...server.adminFlags]);
    assert.equal(usage.code, 2, describeResult(usage));
    assert.match(
      usage.stderr,
      /^muster token create: --install-agent: "rpm" is not one of executable, bundle$/m,
    );
    assert.equal((await sandbox.json<TokenView[]>(['token', 'ls', ...server.adminFlags])).length, tokens);
  });
});
