import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type Command,
  type CommandTargetView,
  type CommandView,
  formatPublicKey,
  type Policy,
  type Receipt,
  type SignedPolicy,
  signCommand,
  signPolicy,
  signReceipt,
  type UnsignedReceipt,
} from '@muster/proto';
import {
  type Dialect,
  decisionsAbout,
  dialects,
  enrollAgent,
  httpsJson,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';

// The HTTP side of signed commands, for agents that hold no channel: what a refused receipt
// leaves behind (nothing), progress reports, two answers racing, and commands that run out of
// time before or after they were collected.

const operator = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const MIN = 60_000;

function signed(t: TestServer, nodes: string[], lifetimeMs = 10 * MIN) {
  const now = t.clock.now();
  const command: Command = {
    v: 1,
    id: randomUUID(),
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + lifetimeMs).toISOString(),
    operator: 'ops',
    target: { nodes },
    action: 'noop',
    args: {},
  };
  return { command, signature: signCommand(command, operator.privateKey) };
}

function receipt(
  agent: TestAgent,
  commandId: string,
  overrides: Partial<UnsignedReceipt> = {},
  key = createPrivateKey(agent.keyPem),
): Receipt {
  const at = new Date().toISOString();
  const unsigned: UnsignedReceipt = {
    commandId,
    nodeId: agent.nodeId,
    status: 'succeeded',
    exitCode: 0,
    startedAt: at,
    finishedAt: at,
    stdoutTail: 'done\n',
    stderrTail: '',
    outputSha256: createHash('sha256').update('done\n').digest('hex'),
    ...overrides,
  };
  return { ...unsigned, signature: signReceipt(unsigned, key) };
}

for (const dialect of dialects() as Dialect[]) {
  describe(`receipts and expiry over HTTP (${dialect})`, () => {
    let t: TestServer;
    let web: TestAgent;
    let other: TestAgent;
    let policy: SignedPolicy;

    const post = (path: string, from: TestAgent, body: unknown) =>
      httpsJson(`${t.server.agentUrl}${path}`, { body, agent: from.agent });
    const view = async (id: string) => {
      const res = await t.admin('GET', `/v1/commands/${id}`);
      assert.equal(res.status, 200, res.body);
      return res.json as CommandView;
    };
    const targetOf = async (id: string, node: TestAgent): Promise<CommandTargetView> => {
      const found = (await view(id)).targets!.find((x) => x.nodeId === node.nodeId);
      assert.ok(found, `${node.name} is a target of ${id}`);
      return found;
    };
    const issue = async (cmd: ReturnType<typeof signed>) => {
      const res = await t.admin('POST', '/v1/commands', cmd);
      assert.equal(res.status, 202, res.body);
    };
    /**
     * Polls until the server's own sweep has moved this target, or the deadline passes. The sweep
     * runs on the test's clock: the tick that passed a deadline also ran it.
     */
    const until = async (id: string, node: TestAgent, state: string) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const target = await targetOf(id, node);
        if (target.state === state || Date.now() > deadline) return target;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };

    before(async () => {
      t = await startTestServer(dialect);
      // Before any policy: the agent's fallback says so with 204, not an empty object.
      const bare = await enrollAgent(t, { name: 'rx-first' });
      assert.equal(
        (await httpsJson(`${t.server.agentUrl}/v1/agent/policy`, { agent: bare.agent })).status,
        204,
      );
      const body: Policy = {
        version: 4,
        operators: [{ name: 'ops', publicKey: formatPublicKey(operator.publicKey), profiles: ['*'] }],
        profiles: { default: { actions: { noop: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 1024 } } } },
      };
      const root = createPrivateKey(readFileSync(join(t.dataDir, 'root.key'), 'utf8'));
      policy = { policy: body, signature: signPolicy(body, root) };
      assert.equal((await t.admin('POST', '/v1/policy', policy)).status, 201);
      web = await enrollAgent(t, { name: 'rx-web' });
      other = await enrollAgent(t, { name: 'rx-other' });
    });
    after(() => t?.close());

    test('an agent without a channel reads the policy in force over HTTP', async () => {
      const res = await httpsJson(`${t.server.agentUrl}/v1/agent/policy`, { agent: web.agent });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, policy);
      assert.equal((await web.heartbeat()).json.policyVersion, 4);
    });

    test('refused receipts leave a delivered, unanswered command exactly as it was', async () => {
      const cmd = signed(t, ['rx-web']);
      await issue(cmd);
      const beat = await web.heartbeat();
      assert.deepEqual(beat.json.commands, [cmd]);
      const before = await targetOf(cmd.command.id, web);
      assert.equal(before.state, 'delivered');

      const genuine = receipt(web, cmd.command.id);
      // The same bytes, spelled otherwise: base64 decoders skip the line break.
      const respelled = `${genuine.signature.slice(0, 8)}\n${genuine.signature.slice(8)}`;
      const refusals: Array<[string, TestAgent, Receipt, number, string]> = [
        [
          'signed by another key',
          web,
          receipt(web, cmd.command.id, {}, stranger.privateKey),
          400,
          'bad_signature',
        ],
        ['its signature on other words', web, { ...genuine, status: 'failed' }, 400, 'bad_signature'],
        [
          'its signature in another base64 spelling',
          web,
          { ...genuine, signature: respelled },
          400,
          'bad_signature',
        ],
        ['for another node', web, receipt(web, cmd.command.id, { nodeId: other.nodeId }), 400, 'wrong_node'],
        [
          'from a node the command was not sent to',
          other,
          receipt(other, cmd.command.id),
          404,
          'unknown_command',
        ],
        ['for a command that does not exist', web, receipt(web, randomUUID()), 404, 'unknown_command'],
      ];
      for (const [what, from, body, status, code] of refusals) {
        const res = await post('/v1/agent/receipts', from, body);
        assert.equal(res.status, status, `a receipt ${what}: ${res.body}`);
        assert.equal(res.json?.code, code, `a receipt ${what}: ${res.body}`);
        assert.deepEqual(await targetOf(cmd.command.id, web), before, `a receipt ${what} changed nothing`);
      }
      const ledger = await decisionsAbout(t, `command:${cmd.command.id}`);
      assert.deepEqual(
        ledger.map((d) => d.kind),
        ['command.issued', 'command.delivered'],
        'no refused receipt reached the ledger',
      );

      assert.equal((await post('/v1/agent/receipts', web, genuine)).status, 202);
      const settled = await targetOf(cmd.command.id, web);
      assert.equal(settled.state, 'succeeded');
      assert.deepEqual(settled.receipt, genuine);
    });

    test('running is reported over HTTP; another node cannot move this node’s state', async () => {
      const cmd = signed(t, ['rx-web']);
      await issue(cmd);
      await web.heartbeat();
      assert.equal((await post('/v1/agent/running', other, { commandId: cmd.command.id })).status, 202);
      assert.equal((await targetOf(cmd.command.id, web)).state, 'delivered');
      assert.equal((await post('/v1/agent/running', web, { commandId: cmd.command.id })).status, 202);
      assert.equal((await targetOf(cmd.command.id, web)).state, 'running');
      const failed = receipt(web, cmd.command.id, {
        status: 'failed',
        exitCode: 3,
        reason: 'exited with code 3',
      });
      assert.equal((await post('/v1/agent/receipts', web, failed)).status, 202);
      const target = await targetOf(cmd.command.id, web);
      assert.equal(target.state, 'failed');
      assert.equal(target.reason, 'exited with code 3');
      // A late "running" does not reopen an answered command.
      assert.equal((await post('/v1/agent/running', web, { commandId: cmd.command.id })).status, 202);
      assert.equal((await targetOf(cmd.command.id, web)).state, 'failed');
    });

    test('two different genuine answers racing: one stands, and the ledger records one', async () => {
      const cmd = signed(t, ['rx-web']);
      await issue(cmd);
      await web.heartbeat();
      const ok = receipt(web, cmd.command.id);
      const failed = receipt(web, cmd.command.id, {
        status: 'failed',
        exitCode: 1,
        reason: 'exited with code 1',
      });
      const [x, y] = await Promise.all([
        post('/v1/agent/receipts', web, ok),
        httpsJson(`${t.server.agentUrl}/v1/agent/receipts`, {
          body: failed,
          key: web.keyPem,
          cert: web.certPem,
          ca: web.caPem,
        }),
      ]);
      assert.deepEqual([x.status, y.status], [202, 202]);
      const target = await targetOf(cmd.command.id, web);
      assert.ok(
        JSON.stringify(target.receipt) === JSON.stringify(ok) ||
          JSON.stringify(target.receipt) === JSON.stringify(failed),
      );
      const answers = (await decisionsAbout(t, `command:${cmd.command.id}`)).filter(
        (d) => d.kind === 'command.answered',
      );
      assert.equal(answers.length, 1, JSON.stringify(answers));
      assert.equal((answers[0]!.data.answers as Array<{ status: string }>)[0]!.status, target.state);
    });

    test('a command nobody collects expires with the reason; one collected but never answered expires later', async () => {
      const cmd = signed(t, ['rx-web', 'rx-other'], MIN);
      await issue(cmd);
      await web.heartbeat(); // rx-web collects it; rx-other never sends a heartbeat
      t.clock.tick(MIN + 1000);

      const expired = await until(cmd.command.id, other, 'expired');
      assert.equal(expired.state, 'expired', 'the sweep gave up on the command nobody collected');
      assert.equal(expired.reason, 'never delivered before the command expired');
      assert.equal(expired.receipt, null);
      assert.equal(
        (await targetOf(cmd.command.id, web)).state,
        'delivered',
        'a collected command may still answer',
      );
      assert.equal(
        (await other.heartbeat()).json.commands,
        undefined,
        'an expired command is not handed out',
      );
      const decided = await decisionsAbout(t, `node:${other.nodeId}`);
      assert.ok(
        decided.some((d) => d.kind === 'command.expired' && d.data.commandId === cmd.command.id),
        'the expiry is a recorded decision',
      );
      // A late answer from a node that never got the command does not overwrite what happened.
      assert.equal((await post('/v1/agent/receipts', other, receipt(other, cmd.command.id))).status, 202);
      assert.equal((await targetOf(cmd.command.id, other)).state, 'expired');

      // The collected one: an hour past its expiry the server stops waiting for the answer.
      t.clock.tick(60 * MIN);
      const silent = await until(cmd.command.id, web, 'expired');
      assert.equal(silent.state, 'expired');
      assert.equal(silent.reason, 'the node never answered');
      assert.deepEqual((await view(cmd.command.id)).summary, { expired: 2 });
    });
  });
}
