import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type CommandView,
  type NodeView,
  type Receipt,
  receiptSignatureValid,
  signCommand,
  type TokenCreated,
} from '@muster/proto';
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
import { dialects, Sandbox } from '../support/sandbox.js';

// Scale-out (CONTRACT section 6): any replica accepts any admin call, and a command issued on
// one reaches agents whose channel another holds. On PostgreSQL a NOTIFY carries it at once;
// on a shared SQLite file the 5 s sweep is the only messenger.
for (const dialect of dialects()) {
  describe(`a command issued on replica A reaches an agent held by replica B (${dialect})`, () => {
    const sandbox = new Sandbox();
    let a: InProcessServer;
    let b: InProcessServer;
    let alice: Operator;
    let agent: AgentRun;
    let nodeId: string;
    const dir = sandbox.tempDir('actions');

    before(async () => {
      a = await startInProcessServer(sandbox, dialect, { 'heartbeat-interval': '1s' });
      b = await startInProcessServer(sandbox, dialect, { 'heartbeat-interval': '1s' }, undefined, a);
      const root = dataDirRoot(a.dataDir);
      alice = makeOperator('alice');
      // The policy is pushed on B: A must take it up from the shared store before it accepts commands.
      const pushed = await b.admin(
        'POST',
        '/v1/policy',
        signedPolicy(testPolicy(dir, [alice]), root.privateKey),
      );
      assert.equal(pushed.status, 201, JSON.stringify(pushed.json));
      const secret = ((await a.admin('POST', '/v1/tokens', {})).json as TokenCreated).secret;
      agent = startAgent(sandbox, {
        server: new URL(b.server.agentUrl),
        caPin: b.server.identity.ca.pin,
        rootPin: b.server.rootPin,
        token: secret,
        name: 'web-replica',
        profile: 'web',
      });
      nodeId = await waitFor('the agent to enroll', async () => agent.enrolled[0]?.nodeId);
      await waitFor('replica B to hold the channel', async () =>
        b.server.app.channels.heldNodeIds().includes(nodeId) ? true : undefined,
      );
      assert.ok(!a.server.app.channels.heldNodeIds().includes(nodeId), 'replica A holds no channel for it');
      await waitFor('the agent to hold the policy', async () =>
        agent.logs.some((l) => l.msg === 'holding command policy') ? true : undefined,
      );
    });
    after(async () => {
      await agent?.stop();
      await b?.close();
      await a?.close();
      await sandbox.cleanup();
    });

    test('the agent runs it and its signed receipt is visible from both replicas', async () => {
      const signed = command(alice, { nodes: ['web-replica'] }, 'echo', { text: 'from replica A' });
      const issued = await a.admin('POST', '/v1/commands', signed);
      assert.equal(issued.status, 202, JSON.stringify(issued.json));
      assert.deepEqual(issued.json.targets, [{ nodeId, name: 'web-replica' }]);

      const fromA = await answered(a, signed.command.id);
      const target = fromA.targets![0]!;
      assert.equal(target.state, 'succeeded', JSON.stringify(target));
      assert.equal(target.receipt?.stdoutTail, 'from replica A\n');
      const fromB = (await b.admin('GET', `/v1/commands/${signed.command.id}`)).json as CommandView;
      assert.deepEqual(fromB.targets, fromA.targets);
      assert.deepEqual(fromB.summary, { succeeded: 1 });

      // Anyone can check the receipt against the node's certificate, read from either replica.
      const node = (await a.admin('GET', `/v1/nodes/${nodeId}`)).json as NodeView & { cert: { pem: string } };
      assert.ok(receiptSignatureValid(target.receipt as Receipt, node.cert.pem));
    });

    test('a command issued on A runs once on the node B holds, however many sweeps follow', async () => {
      const mark = command(alice, { profile: 'web' }, 'mark');
      assert.equal((await a.admin('POST', '/v1/commands', mark)).status, 202);
      const view = await answered(b, mark.command.id);
      assert.equal(view.targets![0]!.state, 'succeeded');
      // Six more heartbeats at 1 s: at least one 5 s sweep of each replica has passed since.
      const beats = agent.acks.length;
      await waitFor('six more heartbeats', async () => (agent.acks.length >= beats + 6 ? true : undefined), {
        timeoutMs: 30_000,
      });
      assert.equal(marks(join(dir, 'marks')), 1, 'the action ran exactly once');
      const again = (await a.admin('GET', `/v1/commands/${mark.command.id}`)).json as CommandView;
      assert.deepEqual(again.targets, view.targets, 'and its answer did not change');
    });

    test('a command issued on B and approved on A runs on the node B holds', async () => {
      const carl = makeOperator('carl');
      const policy = structuredClone(testPolicy(dir, [alice, carl], 2));
      policy.profiles.web!.actions.echo!.approvals = 2;
      delete policy.profiles.db;
      const root = dataDirRoot(a.dataDir);
      assert.equal((await a.admin('POST', '/v1/policy', signedPolicy(policy, root.privateKey))).status, 201);
      await waitFor('the agent to hold version 2', async () =>
        agent.logs.some((l) => l.msg === 'holding command policy' && l.fields?.version === 2)
          ? true
          : undefined,
      );
      const signed = command(alice, { nodes: ['web-replica'] }, 'echo', { text: 'two operators' });
      const issued = await b.admin('POST', '/v1/commands', signed);
      assert.equal(issued.json.state, 'awaiting_approval', JSON.stringify(issued.json));
      const waiting = (await a.admin('GET', `/v1/commands/${signed.command.id}`)).json as CommandView;
      assert.equal(waiting.state, 'awaiting_approval');
      const approval = { operator: 'carl', signature: signCommand(signed.command, carl.privateKey) };
      const approved = await a.admin('POST', `/v1/commands/${signed.command.id}/approvals`, approval);
      assert.equal(approved.json.state, 'issued', JSON.stringify(approved.json));
      const view = await answered(b, signed.command.id);
      assert.equal(view.targets![0]!.state, 'succeeded', JSON.stringify(view.targets));
      assert.equal(view.targets![0]!.receipt?.stdoutTail, 'two operators\n');
    });
  });
}
