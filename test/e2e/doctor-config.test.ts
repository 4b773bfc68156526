import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine, reportedAfter, waitForNode } from '../support/fleet.js';
import { assertNoStackTrace, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// `muster doctor --config FILE` reads the file the server runs with, and `muster-agent doctor
// --config FILE` the agent's: the whole file, as its role reads it. What the doctor does not
// check is ignored; what its role would refuse, the doctor refuses the same way (exit 2).

const AGENT_MAIN = fileURLToPath(new URL('../../../packages/cli/dist/agent-main.js', import.meta.url));
const hostPort = (url: string) => new URL(url).host;

function assertAllPass(result: { code: number | null; stdout: string; stderr: string }): void {
  assert.equal(result.code, 0, describeResult({ ...result, signal: null }));
  const all = result.stdout.trim().split('\n');
  assert.match(all.at(-1)!, /^all \d+ checks passed$/);
  for (const line of all.slice(0, -1)) assert.match(line, /^ok {4}/, `not ok: ${line}`);
}

describe('muster doctor --config: the config file the server and the agent run with', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let agentDir: string;
  const write = (name: string, text: string) => {
    const path = join(sandbox.tempDir('config'), name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  /** `muster-agent doctor …`: the agent's own program, as the package installs it. */
  const agentDoctor = (args: readonly string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [AGENT_MAIN, 'doctor', ...args], {
        env: { PATH: process.env.PATH ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });

  before(async () => {
    server = await sandbox.startServer();
    const token = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'cfg-1',
      ...server.adminFlags,
    ]);
    agentDir = sandbox.tempDir('agent');
    sandbox.spawn([...agentArgsFromJoinLine(token.agentCommand, server.agentUrl), '--data-dir', agentDir]);
    await waitForNode(sandbox, server, 'cfg-1', 'reports', reportedAfter(null));
  });
  after(() => sandbox.cleanup());

  test('a whole server.toml is read: the keys the doctor checks are used, the others ignored', async () => {
    const secret = write('oidc-secret', 'not-read-by-the-doctor-checks\n');
    const toml = write(
      'server.toml',
      [
        `data-dir = "${server.dataDir}"`,
        `listen = "${hostPort(server.agentUrl)}"`,
        `admin-listen = "${hostPort(server.adminUrl)}"`,
        'san = ["muster.test"]',
        'cert-lifetime = "24h"',
        'heartbeat-interval = "10s"',
        'enroll-rate = 5',
        'log-level = "warn"',
        'oidc-issuer = "https://id.example.test"',
        'oidc-client-id = "muster"',
        `oidc-client-secret-file = "${secret}"`,
        '',
      ].join('\n'),
    );
    // The same file is one the server itself takes.
    const printed = await sandbox.run(['server', '--config', toml, '--print-config']);
    assert.equal(printed.code, 0, describeResult(printed));

    const result = await sandbox.run(['doctor', '--config', toml]);
    assertAllPass(result);
    assert.match(result.stdout, new RegExp(`^ok {4}data dir ${server.dataDir} is private \\(0700\\)$`, 'm'));
    assert.match(
      result.stdout,
      new RegExp(
        `^ok {4}agent plane ${hostPort(server.agentUrl)} is held by this data dir's muster server$`,
        'm',
      ),
    );
    // MUSTER_CONFIG names it as it does for the server; a flag still beats the file.
    assertAllPass(await sandbox.run(['doctor'], { MUSTER_CONFIG: toml }));
    const missing = join(sandbox.tempDir('empty'), 'nothing-here');
    const flagWins = await sandbox.run(['doctor', '--config', toml, '--data-dir', missing]);
    assert.equal(flagWins.code, 1, describeResult(flagWins));
    assert.match(flagWins.stderr, /fix first: no data dir at .+nothing-here: start muster server once/);
  });

  test('what the server would refuse in its file, the doctor refuses: exit 2, naming the file and the key', async () => {
    for (const [text, problem] of [
      ['lisen = "127.0.0.1:8443"\n', 'unknown key "lisen" (did you mean listen?)'],
      ['cert-lifetime = true\n', 'cert-lifetime must be a string, not a boolean: cert-lifetime = "true"'],
      [
        'db = "postgres://muster:hunter2@db.test/muster"\n',
        'db is a secret and is not written in the config file; put it in a file of its own and set db-file to its path',
      ],
    ] as const) {
      const toml = write('server.toml', `data-dir = "${server.dataDir}"\n${text}`);
      const result = await sandbox.run(['doctor', '--config', toml]);
      assert.equal(result.code, 2, describeResult(result));
      assert.equal(
        result.stderr,
        `muster doctor: invalid configuration: ${toml}: ${problem}\nSee: muster doctor --help\n`,
      );
      assert.doesNotMatch(result.stderr, /hunter2/);
    }
  });

  test('muster-agent doctor --config reads the agent.toml the agent runs with', async () => {
    const toml = write(
      'agent.toml',
      [
        `server = ["${server.agentUrl}"]`,
        `data-dir = "${agentDir}"`,
        'token-file = "/etc/muster/join-token"',
        'name = "cfg-1"',
        'label = ["role=db"]',
        'renew-fraction = "0.67"',
        'log-level = "info"',
        '',
      ].join('\n'),
    );
    const result = await agentDoctor(['--config', toml]);
    assertAllPass(result);
    assert.match(result.stdout, /^ok {4}node certificate of cfg-1 valid until /m);
    assert.match(
      result.stdout,
      new RegExp(`^ok {4}server ${server.agentUrl} reachable; it accepts this node's identity$`, 'm'),
    );

    const inline = write('agent.toml', `data-dir = "${agentDir}"\ntoken = "mjt_secret"\n`);
    const refused = await agentDoctor(['--config', inline]);
    assert.equal(refused.code, 2, describeResult({ ...refused, signal: null }));
    assert.match(
      refused.stderr,
      /^muster-agent doctor: invalid configuration: .+agent\.toml: token is a secret and is not written in the config file; put it in a file of its own and set token-file to its path$/m,
    );
    assert.doesNotMatch(refused.stderr, /mjt_secret/);
    assertNoStackTrace(refused.stderr);
  });
});
