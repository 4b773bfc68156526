import assert from 'node:assert/strict';
import { chmodSync, readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine, reportedAfter, waitForNode } from '../support/fleet.js';
import {
  assertNoStackTrace,
  type CliResult,
  describeResult,
  Sandbox,
  type ServerUnderTest,
} from '../support/sandbox.js';

// `muster doctor` as an operator runs it on a server host and on an agent host: one line per
// check, exit 0 when all pass, exit 1 with one sentence naming the first thing to fix.

const hostPort = (url: string) => new URL(url).host;

function lines(result: CliResult): string[] {
  return result.stdout.trim().split('\n');
}

function assertAllPass(result: CliResult): void {
  assert.equal(result.code, 0, describeResult(result));
  const all = lines(result);
  assert.match(all.at(-1)!, /^all \d+ checks passed$/);
  for (const line of all.slice(0, -1)) assert.match(line, /^ok {4}/, `not ok: ${line}`);
}

function assertFailsFirst(result: CliResult, first: RegExp): void {
  assert.equal(result.code, 1, describeResult(result));
  assert.equal(result.stderr.trim().split('\n').length, 1, `not one line:\n${result.stderr}`);
  assert.match(result.stderr, /^muster doctor: \d+ of \d+ checks failed; fix first: /);
  assert.match(result.stderr.trim(), first);
  assertNoStackTrace(result.stderr);
}

/** A port nothing listens on: bound by the OS, then let go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('muster doctor on a server host', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let flags: string[];

  before(async () => {
    server = await sandbox.startServer();
    flags = [
      '--data-dir',
      server.dataDir,
      '--listen',
      hostPort(server.agentUrl),
      '--admin-listen',
      hostPort(server.adminUrl),
    ];
  });
  after(() => sandbox.cleanup());

  test('a healthy data dir passes every check, with the running server holding its ports', async () => {
    const result = await sandbox.run(['doctor', ...flags]);
    assertAllPass(result);
    const out = result.stdout;
    assert.match(out, /^ok {4}data dir .+ is private \(0700\)$/m);
    assert.match(out, /^ok {4}.+\/ca\.key is private \(0600\)$/m);
    assert.match(out, /^ok {4}sqlite:.+muster\.db opens and answers$/m);
    assert.match(out, /^ok {4}fleet CA valid until \S+ \(\d+ days left\)$/m);
    assert.match(out, /^ok {4}server certificate valid until /m);
    assert.match(out, /^ok {4}\d+ MiB \(\d+ %\) free on the file system of /m);
    assert.match(
      out,
      new RegExp(
        `^ok {4}agent plane ${hostPort(server.agentUrl)} is held by this data dir's muster server$`,
        'm',
      ),
    );
    assert.match(
      out,
      new RegExp(`^ok {4}admin API ${hostPort(server.adminUrl)} is held by a running muster server`, 'm'),
    );
  });

  test('a key file others can read fails, and the doctor names it with the chmod that fixes it', async () => {
    const key = join(server.dataDir, 'ca.key');
    chmodSync(key, 0o644);
    try {
      const result = await sandbox.run(['doctor', ...flags]);
      const expected = `${key} is readable by others (mode 0644): run: chmod 600 ${key}`;
      assertFailsFirst(result, new RegExp(`fix first: ${expected.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`));
      assert.ok(lines(result).includes(`FAIL  ${expected}`), result.stdout);
    } finally {
      chmodSync(key, 0o600);
    }
    assertAllPass(await sandbox.run(['doctor', ...flags]));
  });

  test('a port held by another program fails, naming the flag to change', async () => {
    // It hangs up on whoever calls, as a program that is not Muster would.
    const squatter: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const { port } = squatter.address() as { port: number };
    try {
      const result = await sandbox.run([
        'doctor',
        ...flags.slice(0, 2),
        '--listen',
        `127.0.0.1:${port}`,
        ...flags.slice(4),
      ]);
      assertFailsFirst(
        result,
        new RegExp(
          `agent plane 127\\.0\\.0\\.1:${port} is in use by another program: stop it, or give --listen another port$`,
        ),
      );
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  test('--server without --agent-data-dir, or not https, is a usage error', async () => {
    const alone = await sandbox.run(['doctor', '--server', 'https://127.0.0.1:8443']);
    assert.equal(alone.code, 2, describeResult(alone));
    assert.match(alone.stderr, /^muster doctor: --server checks an agent host: give --agent-data-dir too$/m);
    const plain = await sandbox.run(['doctor', '--agent-data-dir', server.dataDir, '--server', 'http://x:1']);
    assert.equal(plain.code, 2, describeResult(plain));
    assert.match(plain.stderr, /^muster doctor: --server: "http:\/\/x:1" is not an https:\/\/ URL$/m);
    assertNoStackTrace(plain.stderr);
  });

  test('a data dir that is not there is the one thing named', async () => {
    const missing = join(sandbox.tempDir('empty'), 'nothing-here');
    const result = await sandbox.run(['doctor', '--data-dir', missing]);
    assertFailsFirst(result, /no data dir at .+nothing-here: start muster server once/);
    assert.equal(lines(result).length, 1, result.stdout);
  });
});

if (process.env.MUSTER_TEST_PG_URL) {
  describe('muster doctor on a server host with PostgreSQL', () => {
    const sandbox = new Sandbox();
    after(() => sandbox.cleanup());

    test('the store it checks is the one --db names, shown without credentials', async () => {
      const db = await sandbox.postgresDatabase();
      const server = await sandbox.startServer({ db });
      const result = await sandbox.run([
        'doctor',
        ...['--data-dir', server.dataDir, '--db', db],
        ...['--listen', hostPort(server.agentUrl), '--admin-listen', hostPort(server.adminUrl)],
      ]);
      assertAllPass(result);
      const url = new URL(db);
      assert.match(
        result.stdout,
        new RegExp(`^ok {4}postgres store ${url.host}${url.pathname} opens and answers$`, 'm'),
      );
      if (url.password) assert.doesNotMatch(result.stdout, new RegExp(url.password));
    });
  });
}

describe('muster doctor --agent-data-dir on an agent host', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let agentDir: string;

  before(async () => {
    server = await sandbox.startServer();
    const token = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'doc-1',
      ...server.adminFlags,
    ]);
    agentDir = sandbox.tempDir('agent');
    sandbox.spawn([...agentArgsFromJoinLine(token.agentCommand, server.agentUrl), '--data-dir', agentDir]);
    await waitForNode(sandbox, server, 'doc-1', 'reports', reportedAfter(null));
  });
  after(() => sandbox.cleanup());

  test('an enrolled agent passes: identity, its server reachable, the clock close to the server', async () => {
    const result = await sandbox.run(['doctor', '--agent-data-dir', agentDir]);
    assertAllPass(result);
    assert.match(result.stdout, /^ok {4}node certificate of doc-1 valid until \S+ \(\d+ h left\)$/m);
    assert.match(
      result.stdout,
      new RegExp(`^ok {4}server ${server.agentUrl} reachable; it accepts this node's identity$`, 'm'),
    );
    assert.match(result.stdout, /^ok {4}clock within \d+ s of the server's$/m);
  });

  test('a server URL that does not answer fails, naming it', async () => {
    const port = await closedPort();
    const result = await sandbox.run([
      'doctor',
      '--agent-data-dir',
      agentDir,
      '--server',
      `https://127.0.0.1:${port}`,
    ]);
    assertFailsFirst(
      result,
      new RegExp(`server https://127\\.0\\.0\\.1:${port} cannot be reached \\(.*ECONNREFUSED`),
    );
    assert.match(result.stdout, new RegExp(`^ok {4}server ${server.agentUrl} reachable`, 'm'));
  });

  test("a clock far from the server's fails, saying by how much", async () => {
    // A server ten minutes ahead, with the real server's own certificate, so the node trusts it.
    const ahead = createHttpsServer(
      {
        key: readFileSync(join(server.dataDir, 'server.key')),
        cert: readFileSync(join(server.dataDir, 'server.pem')),
      },
      (_req, res) => {
        res.setHeader('date', new Date(Date.now() + 600_000).toUTCString());
        res.writeHead(204).end();
      },
    );
    await new Promise<void>((resolve) => ahead.listen(0, '127.0.0.1', resolve));
    const { port } = ahead.address() as { port: number };
    try {
      const result = await sandbox.run([
        ...['doctor', '--agent-data-dir', agentDir],
        ...['--server', `https://127.0.0.1:${port}`],
      ]);
      assertFailsFirst(
        result,
        /fix first: this host's clock is (59\d|60\d) s behind the server's: turn on time sync/,
      );
      assert.match(result.stdout, new RegExp(`^ok {4}server https://127\\.0\\.0\\.1:${port} reachable`, 'm'));
    } finally {
      ahead.closeAllConnections();
      await new Promise((resolve) => ahead.close(resolve));
    }
  });

  test('a node key others can read fails, naming it', async () => {
    const key = join(agentDir, 'node.key');
    chmodSync(key, 0o644);
    try {
      const result = await sandbox.run(['doctor', '--agent-data-dir', agentDir]);
      assertFailsFirst(
        result,
        new RegExp(`fix first: ${key}.* is readable by others \\(mode 0644\\): run: chmod 600 `),
      );
    } finally {
      chmodSync(key, 0o600);
    }
  });

  test('a decommissioned node is told its server refuses the identity, and how to come back', async () => {
    const done = await sandbox.run(['nodes', 'decommission', 'doc-1', ...server.adminFlags]);
    assert.equal(done.code, 0, describeResult(done));
    const result = await sandbox.run(['doctor', '--agent-data-dir', agentDir]);
    assertFailsFirst(
      result,
      /refuses this node's identity \(401\): on the server run "muster token create --name doc-1"/,
    );
  });
});
