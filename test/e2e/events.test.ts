import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { EventEnvelope, TokenCreated } from '@muster/proto';
import { describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// `muster events`: history oldest first, filters, and --follow tailing a real server's stream.
describe('muster events', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let token: TokenCreated;

  before(async () => {
    server = await sandbox.startServer();
    token = await sandbox.json<TokenCreated>(['token', 'create', '--name', 'web-1', ...server.adminFlags]);
  });
  after(() => sandbox.cleanup());

  const postNote = async (text: string) => {
    const adminToken = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    const res = await fetch(`${server.adminUrl}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'note', text }),
    });
    assert.equal(res.status, 201);
    return (await res.json()) as EventEnvelope;
  };

  test('history lists decisions and notes oldest first, filtered by kind', async () => {
    await postNote('maintenance window opens');
    const all = await sandbox.json<EventEnvelope[]>(['events', ...server.adminFlags]);
    assert.deepEqual(
      all.map((e) => e.kind),
      ['token.created', 'note'],
    );
    assert.equal(all[0]!.data.subject, `token:${token.id}`);

    const text = await sandbox.run(['events', '--kind', 'note', ...server.adminFlags]);
    assert.equal(text.code, 0, describeResult(text));
    assert.match(text.stdout, /^TIME\s+SEVERITY\s+KIND/);
    assert.match(text.stdout, /note\s+-\s+user:admin\s+maintenance window opens/);
    assert.doesNotMatch(text.stdout, /token\.created/);
  });

  test('bad flags are usage errors (exit 2) with one sentence', async () => {
    for (const flags of [
      ['--limit', '-1'],
      ['--limit', 'lots'],
      ['--since', 'last tuesday'],
    ]) {
      const result = await sandbox.run(['events', ...flags, ...server.adminFlags]);
      assert.equal(result.code, 2, describeResult(result));
      assert.equal(result.stdout, '');
    }
  });

  test('--follow prints new events as they happen, until interrupted', async () => {
    const follow = sandbox.spawn(['events', '--follow', '--json', '--kind', 'note', ...server.adminFlags]);
    // The newest matching event is printed first; then the stream is live.
    await follow.waitForOutput('the recent history', (p) =>
      p.stdout.includes('maintenance window opens') ? true : undefined,
    );
    // Written right away: whether it lands before or after the stream connects, it is printed once.
    await postNote('disk replaced');
    await follow.waitForOutput('the live note', (p) =>
      p.stdout.includes('disk replaced') ? true : undefined,
    );
    await postNote('second disk replaced');
    await follow.waitForOutput('the second note', (p) =>
      p.stdout.includes('second disk replaced') ? true : undefined,
    );
    const exit = await follow.stop('SIGINT');
    assert.equal(exit.code, 0, follow.transcript());
    const lines = follow.stdout.trim().split('\n');
    const texts = lines.map((line) => (JSON.parse(line) as EventEnvelope).data.text);
    assert.deepEqual(texts, ['maintenance window opens', 'disk replaced', 'second disk replaced']);
  });

  test('--follow survives a server restart: it reconnects and resumes without repeating', async () => {
    const port = await freePort();
    const dataDir = sandbox.tempDir('restart');
    const start = async () => {
      const proc = sandbox.spawn([
        'server',
        '--data-dir',
        dataDir,
        '--listen',
        '127.0.0.1:0',
        '--admin-listen',
        `127.0.0.1:${port}`,
        '--log-level',
        'warn',
      ]);
      await proc.waitForOutput('the server to listen', (p) =>
        /admin API/.test(p.stdout) ? true : undefined,
      );
      return proc;
    };
    const adminUrl = `http://127.0.0.1:${port}`;
    const note = async (text: string) => {
      const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      const res = await fetch(`${adminUrl}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'note', text }),
      });
      assert.equal(res.status, 201);
    };
    let server = await start();
    await note('before the restart');
    const follow = sandbox.spawn(['events', '--follow', '--json', '--url', adminUrl, '--data-dir', dataDir]);
    await follow.waitForOutput('the history', (p) =>
      p.stdout.includes('before the restart') ? true : undefined,
    );
    await server.stop('SIGTERM');
    server = await start();
    await note('after the restart');
    await follow.waitForOutput('the note after the restart', (p) =>
      p.stdout.includes('after the restart') ? true : undefined,
    );
    assert.equal((await follow.stop('SIGINT')).code, 0, follow.transcript());
    await server.stop('SIGTERM');
    const texts = follow.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as EventEnvelope).data.text);
    assert.deepEqual(texts, ['before the restart', 'after the restart']);
    assert.match(follow.stderr, /the event stream was interrupted; reconnecting/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
