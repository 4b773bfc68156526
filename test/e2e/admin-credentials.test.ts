import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanEnv, MUSTER_CLI, waitFor } from '../support/processes.js';
import { describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

/** The words after `muster` in a line the server printed, to run exactly what a user would paste. */
function printedArgs(stdout: string, pattern: RegExp): string[] {
  const line = pattern.exec(stdout)?.[1];
  assert.ok(line, `no line matching ${pattern} in:\n${stdout}`);
  return line.trim().split(/\s+/);
}

async function signInWithCode(adminUrl: string, code: string): Promise<Response> {
  return fetch(`${adminUrl}/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code }),
  });
}

// What the server prints and how admin verbs find it and its token, through real processes.
describe('muster server, its hints and the admin credentials', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  before(async () => {
    server = await sandbox.startServer();
  });
  after(() => sandbox.cleanup());

  test('its stdout through a pipe carries no sign-in code; the muster console link it names gives a link that signs in once', async () => {
    const out = server.process.stdout;
    assert.doesNotMatch(out, /#code=/, out);
    const args = printedArgs(out, /make a one-time link: muster (console link .+)\)$/m);
    assert.deepEqual(args.slice(2), ['--url', server.adminUrl, '--data-dir', server.dataDir]);
    const made = await sandbox.run(args);
    assert.equal(made.code, 0, describeResult(made));
    const link = made.stdout.trim();
    assert.ok(link.startsWith(`${server.adminUrl}/#code=`), link);
    const code = new URL(link).hash.slice('#code='.length);

    const first = await signInWithCode(server.adminUrl, code);
    assert.equal(first.status, 201);
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
    const { csrf } = (await first.json()) as { csrf: string };
    const session = await fetch(`${server.adminUrl}/v1/session`, { headers: { cookie } });
    assert.equal(session.status, 200);
    assert.equal((await signInWithCode(server.adminUrl, code)).status, 401, 'the link works once');
    // The server logs that a link was made, never the code.
    assert.ok(!server.process.stderr.includes(code));

    // Without the admin token there is no link, and a console session cannot mint links for
    // sessions beyond its own.
    const anonymous = await fetch(`${server.adminUrl}/v1/console/links`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(anonymous.status, 401);
    const fromConsole = await fetch(`${server.adminUrl}/v1/console/links`, {
      method: 'POST',
      headers: { cookie, 'x-muster-csrf': csrf, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(fromConsole.status, 403);
    assert.match(((await fromConsole.json()) as { detail: string }).detail, /API token/);
  });

  test('on a terminal it prints the one-time sign-in link itself, and that link signs in once', async () => {
    // util-linux `script` gives the server a pseudo-terminal for stdout, as an operator's shell would.
    const dataDir = sandbox.tempDir('tty');
    const command = [
      process.execPath,
      MUSTER_CLI,
      'server',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ].join(' ');
    const tty = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: sandbox.cwd,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    tty.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    try {
      const [adminUrl, code] = await waitFor(
        'the server to print a sign-in link on its terminal',
        async () => {
          const m = /^ {2}console +(http:\/\/127\.0\.0\.1:\d+)\/#code=([A-Za-z0-9_-]+)\s*$/m.exec(out);
          return m ? [m[1]!, m[2]!] : undefined;
        },
      );
      assert.equal((await signInWithCode(adminUrl, code)).status, 201);
      assert.equal((await signInWithCode(adminUrl, code)).status, 401);
    } finally {
      const closed = new Promise((resolve) => tty.once('close', resolve));
      tty.kill('SIGTERM');
      await closed;
    }
  });

  test('the join-token hint names how the CLI finds the token, and runs as printed', async () => {
    const args = printedArgs(server.process.stdout, /^Make a join token with: muster (token create .+)$/m);
    assert.ok(args.includes('--data-dir') || args.includes('--token-file'), args.join(' '));
    const result = await sandbox.run(args);
    assert.equal(result.code, 0, describeResult(result));
    assert.match(result.stdout, /muster agent /);
  });

  test('the flags that find the server may also come before the verb', async () => {
    const result = await sandbox.run([...server.adminFlags, 'nodes', 'ls', '--json']);
    assert.equal(result.code, 0, describeResult(result));
    assert.ok(Array.isArray(JSON.parse(result.stdout)), result.stdout);
  });

  test('--token-file and MUSTER_TOKEN_FILE are credentials, and MUSTER_TOKEN still works', async () => {
    const tokenFile = join(server.dataDir, 'admin.token');
    const url = ['--url', server.adminUrl, '--data-dir', sandbox.tempDir('empty')];
    for (const [args, env] of [
      [[...url, '--token-file', tokenFile], {}],
      [url, { MUSTER_TOKEN_FILE: tokenFile }],
      [url, { MUSTER_TOKEN: readFileSync(tokenFile, 'utf8').trim() }],
    ] as const) {
      const result = await sandbox.run(['nodes', 'ls', ...args], env);
      assert.equal(result.code, 0, describeResult(result));
    }
    const missing = await sandbox.run(['nodes', 'ls', ...url]);
    assert.equal(missing.code, 1, describeResult(missing));
    assert.match(missing.stderr, /no admin token: pass --token-file \(or set MUSTER_TOKEN_FILE\)/);
    const help = await sandbox.run(['nodes', 'ls', '--help']);
    assert.match(help.stdout, /--token-file FILE .*\[MUSTER_TOKEN_FILE\]/);
    assert.match(help.stdout, /--token TOKEN .*less safe/);
  });

  test('a refused token names where it came from: the data dir it read, or the file it was given', async () => {
    const stale = join(sandbox.cwd, '.muster');
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, 'admin.token'), 'mat_not-the-servers-token\n', { mode: 0o600 });
    const fromDataDir = await sandbox.run(['nodes', 'ls', '--url', server.adminUrl]);
    assert.equal(fromDataDir.code, 1, describeResult(fromDataDir));
    assert.match(fromDataDir.stderr, /the server refused the token from \.\/\.muster\/admin\.token: /);

    const other = join(sandbox.tempDir('token'), 'admin.token');
    writeFileSync(other, 'mat_also-wrong\n', { mode: 0o600 });
    const fromFile = await sandbox.run(['nodes', 'ls', '--url', server.adminUrl, '--token-file', other]);
    assert.equal(fromFile.code, 1, describeResult(fromFile));
    assert.ok(fromFile.stderr.includes(`the server refused the token from ${other}: `), fromFile.stderr);
  });

  test("the server's refusal of a body field is told in terms of the flag that set it", async () => {
    const result = await sandbox.run(['token', 'create', '--uses', '2000000', ...server.adminFlags]);
    assert.equal(result.code, 2, describeResult(result));
    assert.match(result.stderr, /^muster token create: --uses: at most 1000000$/m);
    assert.doesNotMatch(result.stderr, /body\./);
  });
});
