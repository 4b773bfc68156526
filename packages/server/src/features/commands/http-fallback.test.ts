import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type Command,
  type CommandView,
  formatPublicKey,
  type Policy,
  type Receipt,
  signCommand,
  signPolicy,
  signReceipt,
  type UnsignedReceipt,
} from '@muster/proto';
import {
  type Dialect,
  dialects,
  enrollAgent,
  httpsJson,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';

const operator = generateKeyPairSync('ed25519');

function signed(t: TestServer, nodes: string[], lifetimeMs = 60_000) {
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

function receipt(agent: TestAgent, commandId: string, overrides: Partial<UnsignedReceipt> = {}): Receipt {
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
  return { ...unsigned, signature: signReceipt(unsigned, createPrivateKey(agent.keyPem)) };
}

const postReceipt = (t: TestServer, agent: TestAgent, body: Receipt) =>
  httpsJson(`${t.server.agentUrl}/v1/agent/receipts`, { body, agent: agent.agent });

for (const dialect of dialects() as Dialect[]) {
  // An agent that holds no channel still gets its commands (in heartbeat answers) and answers
  // them (POST /v1/agent/receipts); the server checks each receipt against the node's certificate.
  describe(`commands for agents without a channel (${dialect})`, () => {
    let t: TestServer;
    let web: TestAgent;
    let other: TestAgent;
    before(async () => {
      t = await startTestServer(dialect);
      const policy: Policy = {
        version: 1,
        operators: [{ name: 'ops', publicKey: formatPublicKey(operator.publicKey), profiles: ['*'] }],
        profiles: { default: { actions: { noop: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 1024 } } } },
      };
      const root = createPrivateKey(readFileSync(join(t.dataDir, 'root.key'), 'utf8'));
      assert.equal(
        (await t.admin('POST', '/v1/policy', { policy, signature: signPolicy(policy, root) })).status,
        201,
      );
      web = await enrollAgent(t, { name: 'http-web' });
      other = await enrollAgent(t, { name: 'http-other' });
    });
    after(() => t?.close());

    const state = async (id: string) =>
      ((await t.admin('GET', `/v1/commands/${id}`)).json as CommandView).targets![0]!;

    test('a heartbeat answer carries the command; the signed receipt posted back settles it', async () => {
      const cmd = signed(t, ['http-web']);
      assert.equal((await t.admin('POST', '/v1/commands', cmd)).status, 202);
      const beat = await web.heartbeat();
      assert.equal(beat.status, 202);
      assert.deepEqual(beat.json.commands, [cmd]);
      assert.equal(beat.json.policyVersion, 1);
      assert.equal((await state(cmd.command.id)).state, 'delivered');
      assert.equal((await web.heartbeat()).json.commands, undefined, 'a delivered command is not sent again');

      const answer = receipt(web, cmd.command.id);
      assert.equal((await postReceipt(t, web, answer)).status, 202);
      const settled = await state(cmd.command.id);
      assert.equal(settled.state, 'succeeded');
      assert.deepEqual(settled.receipt, answer);

      // Refused: a forged signature, a receipt for another node, one for a command never sent here.
      const forged = {
        ...receipt(web, cmd.command.id, { status: 'failed', exitCode: 1 }),
        signature: answer.signature,
      };
      const refusals: Array<[Receipt, TestAgent, number]> = [
        [forged, web, 400],
        [receipt(web, cmd.command.id, { nodeId: other.nodeId }), web, 400],
        [receipt(other, cmd.command.id), other, 404],
        [receipt(web, randomUUID()), web, 404],
      ];
      for (const [body, from, status] of refusals)
        assert.equal((await postReceipt(t, from, body)).status, status);
      assert.deepEqual((await state(cmd.command.id)).receipt, answer, 'the first, genuine answer stands');
    });

    test('a command never collected before it expires ends expired, with the reason', async () => {
      const cmd = signed(t, ['http-other'], 1_000);
      assert.equal((await t.admin('POST', '/v1/commands', cmd)).status, 202);
      t.clock.tick(5_000); // past the deadline, and one sweep interval: the sweep runs now
      const deadline = Date.now() + 15_000;
      let target = await state(cmd.command.id);
      while (target.state !== 'expired' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        target = await state(cmd.command.id);
      }
      assert.equal(target.state, 'expired');
      assert.match(target.reason ?? '', /never delivered before the command expired/);
      assert.equal(
        (await other.heartbeat()).json.commands,
        undefined,
        'an expired command is not handed out',
      );
    });
  });
}
