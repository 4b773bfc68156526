import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TokenCreated } from '@muster/proto';
import { opensslAdminTls } from '../support/admin-tls.js';
import { agentArgsFromJoinLine, assertHealthy, reportedAfter, waitForNode } from '../support/fleet.js';
import { closedPort } from '../support/ports.js';
import { REPO_ROOT, waitFor } from '../support/processes.js';
import { describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

const NGINX = '/usr/sbin/nginx';
/** The configuration the README documents, as shipped, rendered with envsubst. */
const TEMPLATE = join(REPO_ROOT, 'deploy', 'nginx', 'muster-agent.conf.template');
const dialect = process.env.MUSTER_TEST_PG_URL ? 'postgres' : 'sqlite';

// CONTRACT section 12: a proxy terminates TLS in front of the agent plane, so agents sign their
// requests (RFC 9421) instead of presenting a client certificate. A real nginx, the shipped config.
describe(`an agent with --signed-requests behind nginx terminating TLS (deploy/nginx, ${dialect})`, () => {
  const sandbox = new Sandbox();
  let nginx: ChildProcess | undefined;
  let nginxOutput = '';
  let server: ServerUnderTest;
  let proxyUrl: string;
  let proxyCa: string;
  let accessLog: string;
  let errorLog: string;
  before(async () => {
    const db = dialect === 'postgres' ? await sandbox.postgresDatabase() : undefined;
    const proxiedPort = await closedPort();
    server = await sandbox.startServer({
      ...(db ? { db } : {}),
      args: ['--proxied-listen', `127.0.0.1:${proxiedPort}`, '--trusted-proxy', '127.0.0.1'],
    });
    const prefix = sandbox.tempDir('nginx');
    const tls = opensslAdminTls(prefix); // the proxy's own CA and a certificate for 127.0.0.1
    proxyCa = tls.ca;
    const proxyPort = await closedPort();
    proxyUrl = `https://127.0.0.1:${proxyPort}`;
    const rendered = execFileSync(
      'envsubst',
      ['$MUSTER_PROXY_LISTEN $MUSTER_PROXY_CERT $MUSTER_PROXY_KEY $MUSTER_PROXIED'],
      {
        input: readFileSync(TEMPLATE),
        env: {
          MUSTER_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
          MUSTER_PROXY_CERT: tls.cert,
          MUSTER_PROXY_KEY: tls.key,
          MUSTER_PROXIED: `127.0.0.1:${proxiedPort}`,
        },
      },
    );
    writeFileSync(join(prefix, 'muster-agent.conf'), rendered);
    accessLog = join(prefix, 'access.log');
    errorLog = join(prefix, 'error.log');
    writeFileSync(
      join(prefix, 'nginx.conf'),
      [
        'daemon off;',
        // One process, so that killing it leaves no worker behind holding the port.
        'master_process off;',
        `pid ${join(prefix, 'nginx.pid')};`,
        `error_log ${errorLog} info;`,
        'events { worker_connections 256; }',
        'http {',
        `  access_log ${accessLog};`,
        `  include ${join(prefix, 'muster-agent.conf')};`,
        '}',
      ].join('\n'),
    );
    writeFileSync(errorLog, '');
    nginx = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', errorLog], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    nginx.stdout!.on('data', (d) => (nginxOutput += d));
    nginx.stderr!.on('data', (d) => (nginxOutput += d));
    await waitFor('nginx to listen', async () => {
      if (nginx!.exitCode !== null)
        throw new Error(
          `nginx exited (${nginx!.exitCode}):\n${nginxOutput}\n${readFileSync(errorLog, 'utf8')}`,
        );
      return new Promise<true | undefined>((resolve) => {
        const probe = connect(proxyPort, '127.0.0.1');
        probe.once('connect', () => {
          probe.destroy();
          resolve(true);
        });
        probe.once('error', () => resolve(undefined));
      });
    });
  });
  after(async () => {
    nginx?.kill('SIGKILL');
    await sandbox.cleanup();
  });

  test('it enrolls through nginx, heartbeats ok, holds its channel and runs a signed command', async () => {
    const home = sandbox.tempDir('operator');
    const key = join(home, 'operator.key');
    assert.equal((await sandbox.run(['operator', 'keygen', '--out', key])).code, 0);
    const add = await sandbox.run([
      'operator',
      'add',
      'alice',
      '--pubkey',
      `${key}.pub`,
      '--profiles',
      '*',
      ...server.adminFlags,
    ]);
    assert.equal(add.code, 0, describeResult(add));
    const edit = await sandbox.run(['policy', 'edit', '--yes', ...server.adminFlags], { EDITOR: 'true' });
    assert.equal(edit.code, 0, describeResult(edit));

    const join_ = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'proxied-1',
      ...server.adminFlags,
    ]);
    const agent = sandbox.spawn([
      ...agentArgsFromJoinLine(join_.agentCommand, proxyUrl),
      '--signed-requests',
      '--proxy-ca',
      proxyCa,
      '--data-dir',
      sandbox.tempDir('agent'),
    ]);
    assertHealthy(
      await waitForNode(sandbox, server, 'proxied-1', 'reports through nginx', reportedAfter(null)),
    );
    await waitFor('the agent channel through nginx', async () =>
      /channel to the control plane is open/.test(agent.stderr) ? true : undefined,
    );

    const signer = ['--key', key, '--operator', 'alice', ...server.adminFlags];
    const run = await sandbox.run(['run', '--target', 'proxied-1', '--wait', ...signer, '--', 'uptime']);
    assert.equal(run.code, 0, describeResult(run));
    assert.match(run.stdout, /proxied-1\s+succeeded \(exit 0\)/);

    assert.ok(agent.running, `the agent stopped: ${agent.stderr}`);
    assert.doesNotMatch(agent.stderr, /401|signature|refused the channel/, agent.stderr);
    assert.equal((await agent.stop('SIGTERM')).code, 0);
    // It all went through nginx: the enrollment, and the channel upgraded there (101), which
    // nginx logs once the channel closed.
    const log = await waitFor('nginx to log the closed channel', async () => {
      const text = readFileSync(accessLog, 'utf8');
      return /"GET \/v1\/agent\/channel HTTP\/1\.1" 101/.test(text) ? text : undefined;
    });
    assert.match(log, /"POST \/v1\/enroll HTTP\/1\.1" 201/, log);
  });

  test('an agent given a --ca-pin of another fleet refuses the enrollment answer from behind nginx', async () => {
    const join_ = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'proxied-bad',
      ...server.adminFlags,
    ]);
    const args = agentArgsFromJoinLine(join_.agentCommand, proxyUrl);
    args[args.indexOf('--ca-pin') + 1] = `sha256:${'0'.repeat(64)}`;
    const result = await sandbox.run([
      ...args,
      '--signed-requests',
      '--proxy-ca',
      proxyCa,
      '--data-dir',
      sandbox.tempDir('bad'),
    ]);
    assert.equal(result.code, 1, describeResult(result));
    assert.match(
      result.stderr,
      /no CA in the enrollment answer has the public key sha256:0{64} \(--ca-pin\)/,
    );
  });
});
