import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CommandView, SignedCommand, TokenCreated } from '@muster/proto';
import {
  answered,
  command,
  dataDirRoot,
  makeOperator,
  marks,
  type Operator,
  signedPolicy,
  testPolicy,
} from '../support/commands.js';
import {
  type AgentRun,
  type InProcessServer,
  startAgent,
  startInProcessServer,
} from '../support/in-process.js';
import { waitFor } from '../support/processes.js';
import { Sandbox } from '../support/sandbox.js';

// The agent does not trust the server: these tests hand it commands straight down its channel,
// past every check the server makes, and watch what it runs.
describe('an agent checks every command itself', () => {
  const sandbox = new Sandbox();
  let t: InProcessServer;
  let root: ReturnType<typeof dataDirRoot>;
  let alice: Operator;
  const dir = sandbox.tempDir('actions');
  const marksFile = join(dir, 'marks');
  let web: AgentRun;
  let webDir: string;
  let db: AgentRun;
  let joinSecret: string;
  const ids = { web: '', db: '' };

  const start = (name: string, dataDir?: string) =>
    startAgent(
      sandbox,
      {
        server: new URL(t.server.agentUrl),
        caPin: t.server.identity.ca.pin,
        rootPin: root.pin,
        token: joinSecret,
        name,
        profile: name.startsWith('web') ? 'web' : 'db',
      },
      {},
      dataDir,
    );
  const inject = (nodeId: string, signed: SignedCommand) =>
    assert.ok(t.server.app.channels.sendTo(nodeId, { type: 'command', signed }), 'the node holds a channel');
  /** Waits until the agent logged that it refused this command. */
  const refusal = (run: AgentRun, id: string) =>
    waitFor(`the agent to refuse ${id}`, async () => {
      const entry = run.logs.find((l) => /refused a command/.test(l.msg) && l.fields?.commandId === id);
      return entry ? String(entry.fields?.reason ?? entry.msg) : undefined;
    });
  const channelFor = (nodeId: string) =>
    waitFor(`a channel for ${nodeId}`, async () =>
      t.server.app.channels.heldNodeIds().includes(nodeId) ? true : undefined,
    );

  before(async () => {
    t = await startInProcessServer(sandbox, 'sqlite', { 'heartbeat-interval': '1s' });
    root = dataDirRoot(t.server.identity.paths.dir);
    alice = makeOperator('alice');
    assert.equal(
      (await t.admin('POST', '/v1/policy', signedPolicy(testPolicy(dir, [alice]), root.privateKey))).status,
      201,
    );
    joinSecret = ((await t.admin('POST', '/v1/tokens', { uses: 10 })).json as TokenCreated).secret;
    webDir = sandbox.tempDir('web-agent');
    web = start('web-1', webDir);
    db = start('db-1');
    await waitFor('both agents enrolled', async () => (web.enrolled[0] && db.enrolled[0] ? true : undefined));
    ids.web = web.enrolled[0]!.nodeId;
    ids.db = db.enrolled[0]!.nodeId;
    await channelFor(ids.web);
    await channelFor(ids.db);
  });
  after(async () => {
    await Promise.all([web?.stop(), db?.stop()]);
    await t?.close();
    sandbox.cleanup();
  });

  test('a tampered command, an expired one and one issued in the future are refused and never run', async () => {
    const tampered = command(alice, { nodes: ['web-1'] }, 'mark');
    tampered.command.action = 'slow-mark';
    inject(ids.web, tampered);
    assert.match(await refusal(web, tampered.command.id), /signature does not verify/);
    const now = Date.now();
    const expired = command(
      alice,
      { nodes: ['web-1'] },
      'mark',
      {},
      {
        issuedAt: new Date(now - 120_000).toISOString(),
        expiresAt: new Date(now - 1000).toISOString(),
      },
    );
    inject(ids.web, expired);
    assert.match(await refusal(web, expired.command.id), /expired/);
    const future = command(
      alice,
      { nodes: ['web-1'] },
      'mark',
      {},
      {
        issuedAt: new Date(now + 600_000).toISOString(),
        expiresAt: new Date(now + 700_000).toISOString(),
      },
    );
    inject(ids.web, future);
    assert.match(await refusal(web, future.command.id), /in the future/);
    assert.equal(marks(marksFile), 0);
  });

  test('a command for node A delivered to node B is refused by B', async () => {
    const forWeb = command(alice, { nodes: ['web-1'] }, 'mark');
    inject(ids.db, forWeb);
    assert.match(await refusal(db, forWeb.command.id), /not a target/);
    // db-1's profile has no `mark` either: an all-nodes command is refused there for its allowlist.
    const everywhere = command(alice, { all: true }, 'mark');
    inject(ids.db, everywhere);
    assert.match(
      await refusal(db, everywhere.command.id),
      /operator alice may not run commands on profile db/,
    );
    assert.equal(marks(marksFile), 0);
  });

  test('a command runs once: replayed down the channel, and again after an agent restart, it is not run again', async () => {
    const signed = command(alice, { nodes: ['web-1'] }, 'mark');
    assert.equal((await t.admin('POST', '/v1/commands', signed)).status, 202);
    const view = await answered(t, signed.command.id);
    assert.equal(view.targets![0]!.state, 'succeeded');
    assert.equal(marks(marksFile), 1);
    inject(ids.web, signed);
    await refusalOfReplay(web, signed.command.id);
    await web.stop();
    web = start('web-1', webDir);
    await waitFor('the restarted agent to open its channel', async () =>
      web.logs.some((l) => /channel to the control plane is open/.test(l.msg)) ? true : undefined,
    );
    await channelFor(ids.web);
    inject(ids.web, signed);
    await refusalOfReplay(web, signed.command.id);
    assert.equal(marks(marksFile), 1);
  });

  test('a policy with a lower version or another signer is refused; the agent keeps its own', async () => {
    const held = () => JSON.parse(readFileSync(join(webDir, 'policy.json'), 'utf8')).policy.version as number;
    assert.equal(held(), 1);
    const newer = signedPolicy(testPolicy(dir, [alice], 3), root.privateKey);
    assert.equal((await t.admin('POST', '/v1/policy', newer)).status, 201);
    await waitFor('the agent to hold version 3', async () => (held() === 3 ? true : undefined));
    for (const offered of [
      signedPolicy(testPolicy(dir, [alice], 2), root.privateKey),
      signedPolicy(testPolicy(dir, [alice], 9), makeOperator('mallory').privateKey),
    ])
      assert.ok(t.server.app.channels.sendTo(ids.web, { type: 'policy', signed: offered }));
    await waitFor('both refusals', async () =>
      web.logs.filter((l) => /refused a command policy/.test(l.msg)).length >= 2 ? true : undefined,
    );
    assert.equal(held(), 3);
  });

  test('an action writing 1 GiB to stdout is capped and hashed; the agent does not hold it', async () => {
    const rssBefore = process.memoryUsage().rss;
    const signed = command(alice, { nodes: ['web-1'] }, 'flood');
    assert.equal((await t.admin('POST', '/v1/commands', signed)).status, 202);
    const view = await waitFor(
      'the flood to finish',
      async () => {
        const v = (await t.admin('GET', `/v1/commands/${signed.command.id}`)).json as CommandView;
        return v.targets![0]!.receipt ? v : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    const receipt = view.targets![0]!.receipt!;
    assert.equal(receipt.status, 'succeeded');
    assert.equal(receipt.stdoutTail.length, 1024);
    const zeros = createHash('sha256');
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 1024; i++) zeros.update(chunk);
    assert.equal(receipt.outputSha256, zeros.digest('hex'));
    // 1 GiB passed through; the process (server and agent both) grew by far less.
    assert.ok(process.memoryUsage().rss - rssBefore < 256 * 1024 * 1024, 'memory stays bounded');
  });

  test('the largest receipt a policy allows (both tails full of bytes JSON escapes) still reaches the server', async () => {
    const signed = command(alice, { nodes: ['web-1'] }, 'zeros');
    assert.equal((await t.admin('POST', '/v1/commands', signed)).status, 202);
    const receipt = (await answered(t, signed.command.id)).targets![0]!.receipt!;
    assert.equal(receipt.status, 'succeeded');
    assert.equal(receipt.stdoutTail, '\u0000'.repeat(64 * 1024));
    assert.equal(receipt.stderrTail, '\u0000'.repeat(64 * 1024));
  });

  test('an action that never ends is killed with its children at the timeout', async () => {
    const signed = command(alice, { nodes: ['web-1'] }, 'hang');
    assert.equal((await t.admin('POST', '/v1/commands', signed)).status, 202);
    const view = await answered(t, signed.command.id);
    const target = view.targets![0]!;
    assert.equal(target.state, 'timed_out');
    assert.match(target.reason ?? '', /timeout of 1 s/);
    const child = Number(readFileSync(join(dir, 'child.pid'), 'utf8'));
    await waitFor('the background child to be gone', async () => {
      try {
        process.kill(child, 0);
        return undefined;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ESRCH' ? true : undefined;
      }
    });
  });

  test('an agent restarted mid-command answers interrupted and does not run it again', async () => {
    const before = marks(marksFile);
    const signed = command(alice, { nodes: ['web-1'] }, 'slow-mark');
    assert.equal((await t.admin('POST', '/v1/commands', signed)).status, 202);
    await waitFor('the command to run', async () => {
      const v = (await t.admin('GET', `/v1/commands/${signed.command.id}`)).json as CommandView;
      return v.targets![0]!.state === 'running' && marks(marksFile) === before + 1 ? true : undefined;
    });
    await web.stop();
    web = start('web-1', webDir);
    const view = await answered(t, signed.command.id);
    assert.equal(view.targets![0]!.state, 'interrupted');
    assert.match(view.targets![0]!.reason ?? '', /restarted/);
    assert.equal(marks(marksFile), before + 1);
  });

  /** A replay is logged as one; it may come back with the first answer, never with a second run. */
  async function refusalOfReplay(run: AgentRun, id: string): Promise<void> {
    await waitFor(`the agent to refuse the replay of ${id}`, async () =>
      run.logs.some((l) => /already received/.test(l.msg) && l.fields?.commandId === id) ? true : undefined,
    );
  }
});
