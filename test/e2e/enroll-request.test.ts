import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { caPinOf, createCsrPem, generateKeyPair } from '@muster/host';
import { spkiFingerprint } from '@muster/proto';
import { assertHealthy, reportedAfter, waitForNode } from '../support/fleet.js';
import type { MusterProcess } from '../support/processes.js';
import { assertNoStackTrace, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

const FINGERPRINT = /^ {2}(sha256:[0-9a-f]{64})$/m;

/** The fingerprint of the key a data dir holds: what the operator compares. */
function keyFingerprint(file: string): string {
  const key = createPublicKey(createPrivateKey(readFileSync(file, 'utf8')));
  return spkiFingerprint(key.export({ type: 'spki', format: 'der' }));
}

function pinOf(server: ServerUnderTest): string {
  return caPinOf(readFileSync(join(server.dataDir, 'ca.pem'), 'utf8'));
}

/** `muster agent --request …`, as an operator would start it on a host with no join token. */
function askToJoin(sandbox: Sandbox, server: ServerUnderTest, name: string, dataDir: string): MusterProcess {
  return sandbox.spawn([
    'agent',
    '--request',
    '--server',
    server.agentUrl,
    '--ca-pin',
    pinOf(server),
    '--name',
    name,
    '--data-dir',
    dataDir,
    '--label',
    'env=e2e',
  ]);
}

function printedFingerprint(agent: MusterProcess): Promise<string> {
  return agent.waitForOutput(
    'the agent to print its key fingerprint',
    (p) => FINGERPRINT.exec(p.stdout)?.[1],
  );
}

/** One raw enrollment request, as a script flooding the agent plane would send it. */
async function rawRequest(server: ServerUnderTest, name: string): Promise<{ status: number; body: any }> {
  const keys = await generateKeyPair();
  const payload = JSON.stringify({
    csr: createCsrPem(keys, name),
    name,
    facts: {
      hostname: name,
      os: 'linux',
      arch: 'x64',
      kernel: '6',
      cpus: 1,
      memoryBytes: 1,
      agentVersion: '0',
    },
  });
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${server.agentUrl}/v1/enroll/requests`,
      {
        method: 'POST',
        ca: readFileSync(join(server.dataDir, 'ca.pem')),
        headers: { 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('enrolling without a join token: real server, real agents', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  before(async () => {
    server = await sandbox.startServer();
  });
  after(async () => {
    await sandbox.cleanup();
  });

  test('request → pending shows the printed fingerprint → a wrong one is refused → approved, the node reports', async () => {
    const dir = sandbox.tempDir('host-web');
    const agent = askToJoin(sandbox, server, 'web-1', dir);
    const printed = await printedFingerprint(agent);
    assert.equal(printed, keyFingerprint(join(dir, 'request.key')), 'the fingerprint is not the key SPKI');
    assert.equal(statSync(join(dir, 'request.key')).mode & 0o777, 0o600);
    const pending = await sandbox.json<Array<Record<string, unknown>>>([
      'nodes',
      'pending',
      ...server.adminFlags,
    ]);
    assert.deepEqual(
      pending.map((r) => [r.name, r.fingerprint, r.source, r.labels]),
      [['web-1', printed, '127.0.0.1', { env: 'e2e' }]],
    );
    const table = await sandbox.run(['nodes', 'pending', ...server.adminFlags]);
    assert.match(
      table.stdout,
      new RegExp(`^web-1 +${printed} +127\\.0\\.0\\.1 +- +env=e2e +\\d+ s ago +in 60 min$`, 'm'),
    );

    const wrong = `sha256:${'0'.repeat(64)}`;
    const refused = await sandbox.run([
      'nodes',
      'approve',
      'web-1',
      '--fingerprint',
      wrong,
      ...server.adminFlags,
    ]);
    assert.equal(refused.code, 2, describeResult(refused));
    assert.match(
      refused.stderr,
      /the fingerprint given is not the key of the request for web-1; .*nothing was approved/,
    );
    assertNoStackTrace(refused.stderr);
    const still = await sandbox.json<unknown[]>(['nodes', 'pending', ...server.adminFlags]);
    assert.equal(still.length, 1, 'a refused approval changed the queue');
    const noNode = await sandbox.run(['nodes', 'show', 'web-1', ...server.adminFlags]);
    assert.equal(noNode.code, 1, describeResult(noNode));

    const approved = await sandbox.run([
      'nodes',
      'approve',
      'web-1',
      '--fingerprint',
      printed,
      ...server.adminFlags,
    ]);
    assert.equal(approved.code, 0, describeResult(approved));
    const node = await waitForNode(sandbox, server, 'web-1', 'to report', reportedAfter(null));
    assertHealthy(node);
    assert.deepEqual(node.labels, { env: 'e2e' });
    // The key it runs with is the one whose fingerprint was compared; the request key is gone.
    assert.equal(keyFingerprint(join(dir, 'node.key')), printed);
    assert.ok(!existsSync(join(dir, 'request.key')));
    const events = await sandbox.json<Array<{ kind: string; actor: string }>>([
      'events',
      '--node',
      'web-1',
      ...server.adminFlags,
    ]);
    assert.ok(
      events.some((e) => e.kind === 'node.enrolled' && e.actor === 'user:admin'),
      JSON.stringify(events),
    );
    assert.ok(agent.running, agent.transcript());
    await agent.stop();
  });

  test('a rejected request: the agent stops with a message and a non-zero exit, leaving no identity', async () => {
    const dir = sandbox.tempDir('host-rejected');
    const agent = askToJoin(sandbox, server, 'intruder', dir);
    const printed = await printedFingerprint(agent);
    const rejected = await sandbox.run(['nodes', 'reject', 'intruder', ...server.adminFlags]);
    assert.equal(rejected.code, 0, describeResult(rejected));
    assert.match(
      rejected.stdout,
      new RegExp(`Rejected the enrollment request for intruder \\(${printed}\\)`),
    );
    const exit = await agent.waitForExit();
    assert.equal(exit.code, 1, agent.transcript());
    assert.match(
      agent.stderr,
      /^muster agent: the enrollment request for intruder was rejected by an operator/m,
    );
    assertNoStackTrace(agent.stderr);
    assert.ok(!existsSync(join(dir, 'identity.json')));
    assert.ok(!existsSync(join(dir, 'request.key')));
  });

  test('offline: request file → sign → grant, then the grant used twice or on another host is refused', async () => {
    const host = sandbox.tempDir('host-offline');
    const requestFile = join(sandbox.tempDir('carry'), 'edge.request');
    const made = await sandbox.run([
      'agent',
      'request',
      '--out',
      requestFile,
      '--name',
      'edge-1',
      '--data-dir',
      host,
    ]);
    assert.equal(made.code, 0, describeResult(made));
    const asked = FINGERPRINT.exec(made.stdout)?.[1];
    assert.equal(asked, keyFingerprint(join(host, 'request.key')));
    assert.doesNotMatch(readFileSync(requestFile, 'utf8'), /PRIVATE KEY/, 'the key left the host');

    // A request file altered on the way (another key's fingerprint written in) is refused, unsent.
    const tampered = join(sandbox.tempDir('tampered'), 'edge.request');
    const original = JSON.parse(readFileSync(requestFile, 'utf8'));
    writeFileSync(tampered, JSON.stringify({ ...original, fingerprint: `sha256:${'1'.repeat(64)}` }));
    const altered = await sandbox.run([
      'nodes',
      'sign',
      tampered,
      '--out',
      `${tampered}.grant`,
      ...server.adminFlags,
    ]);
    assert.equal(altered.code, 2, describeResult(altered));
    assert.match(altered.stderr, /its fingerprint is not its CSR's key .*: the file was altered/);
    assert.ok(!existsSync(`${tampered}.grant`));

    const grant = join(sandbox.tempDir('carry-back'), 'edge.grant');
    const signed = await sandbox.run(['nodes', 'sign', requestFile, '--out', grant, ...server.adminFlags]);
    assert.equal(signed.code, 0, describeResult(signed));
    assert.equal(FINGERPRINT.exec(signed.stdout)?.[1], asked, 'sign printed another fingerprint');
    const twice = await sandbox.run([
      'nodes',
      'sign',
      requestFile,
      '--out',
      `${grant}.2`,
      ...server.adminFlags,
    ]);
    assert.equal(twice.code, 1, describeResult(twice));
    assert.match(twice.stderr, /was already let in as node edge-1; a request is signed once \(409\)/);
    assert.ok(!existsSync(`${grant}.2`));

    // On another host, holding a request key of its own: the grant is not for it.
    const elsewhere = sandbox.tempDir('host-elsewhere');
    const own = await sandbox.run([
      'agent',
      'request',
      '--out',
      join(elsewhere, 'r'),
      '--data-dir',
      elsewhere,
    ]);
    assert.equal(own.code, 0, describeResult(own));
    const foreign = await sandbox.run([
      'agent',
      '--grant',
      grant,
      '--server',
      server.agentUrl,
      '--data-dir',
      elsewhere,
    ]);
    assert.equal(foreign.code, 1, describeResult(foreign));
    assert.match(
      foreign.stderr,
      /this grant is for the key sha256:[0-9a-f]{64}, but this host's key is sha256:[0-9a-f]{64}: it was signed for another host's request/,
    );
    assertNoStackTrace(foreign.stderr);
    assert.ok(!existsSync(join(elsewhere, 'identity.json')));

    const notGrant = await sandbox.run(['agent', '--grant', requestFile, '--data-dir', host]);
    assert.equal(notGrant.code, 2, describeResult(notGrant));
    assert.match(notGrant.stderr, /is not a grant file \(muster nodes sign FILE --out GRANT writes one\)/);

    const agent = sandbox.spawn(['agent', '--grant', grant, '--server', server.agentUrl, '--data-dir', host]);
    const node = await waitForNode(sandbox, server, 'edge-1', 'to report', reportedAfter(null));
    assertHealthy(node);
    assert.equal(keyFingerprint(join(host, 'node.key')), asked);
    await agent.stop();

    const reused = await sandbox.run([
      'agent',
      '--grant',
      grant,
      '--server',
      server.agentUrl,
      '--data-dir',
      host,
    ]);
    assert.equal(reused.code, 1, describeResult(reused));
    assert.match(reused.stderr, /already holds the identity of node edge-1 .*a grant is used once/);
    assertNoStackTrace(reused.stderr);
  });
});

describe('the request queue refuses what it must: expiry and a flood from one address', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  before(async () => {
    server = await sandbox.startServer({ args: ['--request-ttl', '3s', '--request-rate', '4'] });
  });
  after(async () => {
    await sandbox.cleanup();
  });

  test('a request nobody approves expires: the agent says so and exits non-zero', async () => {
    const dir = sandbox.tempDir('host-late');
    const agent = askToJoin(sandbox, server, 'late-1', dir);
    await printedFingerprint(agent);
    const exit = await agent.waitForExit();
    assert.equal(exit.code, 1, agent.transcript());
    assert.match(
      agent.stderr,
      /^muster agent: the enrollment request for late-1 expired at .* before an operator approved it/m,
    );
    const pending = await sandbox.json<unknown[]>(['nodes', 'pending', ...server.adminFlags]);
    assert.deepEqual(pending, []);
  });

  test('a flood of requests from one address is answered 429 with a clear message; an agent caught in it says so', async () => {
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await rawRequest(server, `flood-${i}`));
    const limited = answers.filter((a) => a.status === 429);
    assert.ok(limited.length > 0, JSON.stringify(answers.map((a) => a.status)));
    assert.match(limited[0]!.body.detail, /^too many enrollment requests from this address; retry in \d+ s/);
    assert.ok(
      answers.slice(0, 3).every((a) => a.status === 202),
      'refused before the burst was spent',
    );

    const agent = askToJoin(sandbox, server, 'flooded', sandbox.tempDir('host-flooded'));
    await agent.waitForOutput('the agent to report the refusal', (p) =>
      p.logLines().find((l) => /too many enrollment requests from this address/.test(String(l.error))),
    );
    assert.ok(agent.running, 'a rate-limited agent gave up instead of retrying');
    await agent.stop();
  });
});
