import assert from 'node:assert/strict';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomUUID,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type Command,
  type CommandAccepted,
  type CommandView,
  formatPublicKey,
  type Policy,
  signCommand,
  signPolicy,
} from '@muster/proto';
import {
  decisionsAbout,
  dialects,
  enrollAgent,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';
import { as, userToken } from '../../testing/people.js';
import { assertProblem } from '../../testing/problems.js';

// Dual control on the server: a command for an action with "approvals": 2 waits until a second
// operator (another key, another person) signs it, and every way of faking that is refused.

const MIN = 60_000;
const key = () => generateKeyPairSync('ed25519').privateKey;
const keys: Record<string, KeyObject> = { alice: key(), alice2: key(), bob: key(), carol: key(), vic: key() };
// One key under two names: alice's key again, registered for bob.
keys.alias = keys.alice!;

function body(t: TestServer, action = 'restart', lifetimeMs = 10 * MIN): Command {
  const now = t.clock.now();
  return {
    v: 1,
    id: randomUUID(),
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + lifetimeMs).toISOString(),
    operator: 'alice',
    target: { nodes: ['dc-1'] },
    action,
    args: {},
  };
}
const sig = (command: Command, operator: string) => ({
  operator,
  signature: signCommand(command, keys[operator]!),
});

for (const dialect of dialects()) {
  describe(`dual control on the server (${dialect})`, () => {
    let t: TestServer;
    let node: TestAgent;
    const tokens: Record<string, string> = {};
    const approve = (who: string, id: string, signature: unknown) =>
      as(t, tokens[who]!, 'POST', `/v1/commands/${id}/approvals`, signature);
    const view = async (id: string) => {
      const res = await t.admin('GET', `/v1/commands/${id}`);
      assert.equal(res.status, 200, res.body);
      return res.json as CommandView;
    };
    const issue = async (command: Command, signatures = [sig(command, 'alice')]) => {
      const res = await as(t, tokens.alice!, 'POST', '/v1/commands', { command, signatures });
      assert.equal(res.status, 202, res.body);
      return res.json as CommandAccepted;
    };

    before(async () => {
      t = await startTestServer(dialect);
      const op = (name: string, profiles = ['*']) => ({
        name,
        publicKey: formatPublicKey(createPublicKey(keys[name]!)),
        profiles,
      });
      const policy: Policy = {
        version: 1,
        operators: [op('alice'), op('alice2'), op('bob'), op('alias'), op('carol', ['db']), op('vic')],
        profiles: {
          default: {
            actions: {
              restart: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 1024, approvals: 2 },
              uptime: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 1024 },
            },
          },
        },
      };
      const root = createPrivateKey(readFileSync(join(t.dataDir, 'root.key'), 'utf8'));
      const pushed = await t.admin('POST', '/v1/policy', { policy, signature: signPolicy(policy, root) });
      assert.equal(pushed.status, 201, pushed.body);
      for (const [name, role] of [
        ['alice', 'operator'],
        ['bob', 'operator'],
        ['vic', 'viewer'],
      ] as const)
        tokens[name] = (await userToken(t, name, role)).secret;
      for (const entry of policy.operators) {
        const res = await t.admin('POST', '/v1/operators', {
          ...entry,
          ...(entry.name === 'alias' ? { user: 'bob' } : entry.name === 'alice2' ? { user: 'alice' } : {}),
        });
        assert.equal(res.status, 201, res.body);
      }
      node = await enrollAgent(t, { name: 'dc-1' });
    });
    after(() => t?.close());

    test('operator add links a key to its user: named, or the user of the same name', async () => {
      const { items } = (await t.admin('GET', '/v1/operators')).json as {
        items: Array<{ name: string; user: string | null }>;
      };
      const users = Object.fromEntries(items.map((o) => [o.name, o.user]));
      assert.deepEqual(users, {
        alias: 'bob',
        alice: 'alice',
        alice2: 'alice',
        bob: 'bob',
        carol: null,
        vic: 'vic',
      });
      const missing = await t.admin('POST', '/v1/operators', {
        name: 'dave',
        publicKey: formatPublicKey(createPublicKey(key())),
        profiles: ['*'],
        user: 'dave',
      });
      assertProblem(missing, 422, 'no_user');
    });

    test('a command that needs two operators waits, undelivered, until a second one approves', async () => {
      const command = body(t);
      const accepted = await issue(command);
      assert.equal(accepted.state, 'awaiting_approval');
      assert.deepEqual(
        accepted.approvals?.signers.map((s) => [s.operator, s.user]),
        [['alice', 'alice']],
      );
      const waiting = await view(command.id);
      assert.equal(waiting.state, 'awaiting_approval');
      assert.deepEqual(waiting.summary, { awaiting_approval: 1 });
      assert.equal((await node.heartbeat()).json.commands, undefined, 'nothing is delivered while it waits');

      const approved = await approve('bob', command.id, sig(command, 'bob'));
      assert.equal(approved.status, 200, approved.body);
      assert.equal((approved.json as CommandAccepted).state, 'issued');
      const shown = await view(command.id);
      assert.equal(shown.state, 'issued');
      assert.deepEqual(
        shown.approvals?.signers.map((s) => s.operator),
        ['alice', 'bob'],
      );
      const delivered = (await node.heartbeat()).json.commands as Array<{ signatures: unknown[] }>;
      assert.equal(delivered.length, 1);
      assert.deepEqual(delivered[0]!.signatures, [sig(command, 'alice'), sig(command, 'bob')]);
      const decisions = await decisionsAbout(t, `command:${command.id}`);
      const approval = decisions.find((d) => d.kind === 'command.approved');
      assert.equal(approval?.actor, 'user:bob');
      assert.equal(approval?.data.operator, 'bob');
      assert.equal(approval?.data.complete, true);

      // Approved already: another approval has nothing to wait for.
      const again = await approve('alice', command.id, sig(command, 'vic'));
      assertProblem(again, 409, 'not_awaiting');
    });

    test('a second signature by the same operator, or by the same key under another name, is refused', async () => {
      const command = body(t);
      await issue(command);
      assertProblem(await approve('alice', command.id, sig(command, 'alice')), 409, 'already_signed');
      const alias = assertProblem(
        await approve('bob', command.id, sig(command, 'alias')),
        409,
        'already_signed',
      );
      assert.match(alias.detail, /operator alias has the same key as operator alice/);
      // Another key of alice's own is still alice: dual control means two people.
      const own = assertProblem(
        await approve('alice', command.id, sig(command, 'alice2')),
        409,
        'already_signed',
      );
      assert.match(own.detail, /user alice has signed this command already \(as operator alice\)/);
      // The same at submission: two signatures by one operator, or by one key, are one.
      for (const twice of [
        [sig(command, 'alice'), sig(command, 'alice')],
        [sig(command, 'alice'), sig(command, 'alias')],
      ]) {
        const again = body(t);
        const res = await as(t, tokens.alice!, 'POST', '/v1/commands', {
          command: again,
          signatures: twice.map((s) => ({ ...s, signature: signCommand(again, keys[s.operator]!) })),
        });
        assertProblem(res, 400, 'duplicate_signer');
        assert.equal((await t.admin('GET', `/v1/commands/${again.id}`)).status, 404, 'nothing was stored');
      }
      assert.equal((await view(command.id)).state, 'awaiting_approval');
    });

    test('a bad signature, an operator not allowed the profile, and a user not allowed to approve are refused', async () => {
      const command = body(t);
      await issue(command);
      const forged = { operator: 'bob', signature: signCommand({ ...command, action: 'uptime' }, keys.bob!) };
      assertProblem(await approve('bob', command.id, forged), 400, 'bad_signature');
      assertProblem(await approve('bob', command.id, sig(command, 'carol')), 403, 'refused_operator');
      // vic's key is in the policy, but vic is a viewer: bob may send it, vic may not approve.
      const viewer = assertProblem(await approve('bob', command.id, sig(command, 'vic')), 403, 'forbidden');
      assert.equal(
        viewer.detail,
        "operator vic's key belongs to user vic: role viewer may not approve commands",
      );
      assert.ok(Number.isInteger((viewer as unknown as { eventId: number }).eventId));
      const events = (await t.admin('GET', '/v1/events?kind=access.denied')).json.items as Array<{
        id: number;
      }>;
      assert.ok(events.some((e) => e.id === (viewer as unknown as { eventId: number }).eventId));
      // A viewer may not send an approval at all.
      assertProblem(await approve('vic', command.id, sig(command, 'bob')), 403, 'forbidden');
      assert.deepEqual(
        (await view(command.id)).approvals?.signers.map((s) => s.operator),
        ['alice'],
      );
    });

    test("a command signed by a viewer's key is refused even when an operator sends it", async () => {
      const command = { ...body(t, 'uptime'), operator: 'vic' };
      const res = await as(t, tokens.alice!, 'POST', '/v1/commands', {
        command,
        signature: signCommand(command, keys.vic!),
      });
      const problem = assertProblem(res, 403, 'forbidden');
      assert.equal(
        problem.detail,
        "operator vic's key belongs to user vic: role viewer may not create commands",
      );
    });

    test('all signatures at once, or one in a one-element list, are taken as they are', async () => {
      const both = body(t);
      assert.equal((await issue(both, [sig(both, 'alice'), sig(both, 'bob')])).state, 'issued');
      const one = body(t, 'uptime');
      const accepted = await issue(one);
      assert.equal(accepted.state, 'issued');
      assert.deepEqual((await view(one.id)).signed, { command: one, signature: sig(one, 'alice').signature });
    });

    test('a command that expires waiting is shown as expired and can no longer be approved', async () => {
      const command = body(t, 'restart', MIN);
      await issue(command);
      t.clock.advance(2 * MIN);
      const late = assertProblem(await approve('bob', command.id, sig(command, 'bob')), 409, 'expired');
      assert.match(late.detail, /expired 60 s ago while awaiting approval \(1 of 2 signatures\)/);
      assert.equal((await view(command.id)).state, 'expired');
      assertProblem(await approve('bob', 'no-such-command', sig(command, 'bob')), 404, 'not_found');
    });
  });
}
