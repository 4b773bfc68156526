import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CommandView, Policy, TokenCreated } from '@muster/proto';
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

// A policy is pushed on replica A while the agent's channel is held by replica B. On
// PostgreSQL a NOTIFY tells B at once (the deadline below is far under B's 5 s sweep, which on
// PostgreSQL does not carry policies at all); on a shared SQLite file the sweep is the messenger.
const POLICY_DEADLINE_MS = { postgres: 5_000, sqlite: 15_000 };

/** Version 1 lacks the `mark` action on web; version 2 adds it. */
function withoutMark(dir: string, operators: Operator[]): Policy {
  const policy = testPolicy(dir, operators, 1);
  const { mark: _mark, ...web } = policy.profiles.web!.actions;
  return { ...policy, profiles: { ...policy.profiles, web: { actions: web } } };
}

for (const dialect of dialects()) {
  describe(`a policy pushed on replica A reaches an agent held by replica B (${dialect})`, () => {
    const sandbox = new Sandbox();
    let a: InProcessServer;
    let b: InProcessServer;
    let alice: Operator;
    let agent: AgentRun;
    let root: ReturnType<typeof dataDirRoot>;
    const dir = sandbox.tempDir('actions');

    /** The policy version the agent says it holds, newest first. */
    const heldVersion = () =>
      agent.logs
        .filter((l) => l.msg === 'holding command policy')
        .map((l) => l.fields?.version as number)
        .at(-1);

    before(async () => {
      a = await startInProcessServer(sandbox, dialect, { 'heartbeat-interval': '1s' });
      b = await startInProcessServer(sandbox, dialect, { 'heartbeat-interval': '1s' }, undefined, a);
      root = dataDirRoot(a.dataDir);
      alice = makeOperator('alice');
      const first = await a.admin(
        'POST',
        '/v1/policy',
        signedPolicy(withoutMark(dir, [alice]), root.privateKey),
      );
      assert.equal(first.status, 201, JSON.stringify(first.json));
      const secret = ((await a.admin('POST', '/v1/tokens', {})).json as TokenCreated).secret;
      agent = startAgent(sandbox, {
        server: new URL(b.server.agentUrl),
        caPin: b.server.identity.ca.pin,
        rootPin: b.server.rootPin,
        token: secret,
        name: 'web-policy',
        profile: 'web',
      });
      const nodeId = await waitFor('the agent to enroll', async () => agent.enrolled[0]?.nodeId);
      await waitFor('replica B to hold the channel', async () =>
        b.server.app.channels.heldNodeIds().includes(nodeId) ? true : undefined,
      );
      assert.ok(!a.server.app.channels.heldNodeIds().includes(nodeId), 'replica A holds no channel for it');
      await waitFor('the agent to hold policy version 1', async () =>
        heldVersion() === 1 ? true : undefined,
      );
    });
    after(async () => {
      await agent?.stop();
      await b?.close();
      await a?.close();
      await sandbox.cleanup();
    });

    test('the agent takes version 2 at once and runs what only version 2 allows', async (t) => {
      // Under version 1 the server itself refuses `mark`: nothing is sent.
      const early = await a.admin('POST', '/v1/commands', command(alice, { nodes: ['web-policy'] }, 'mark'));
      assert.equal(early.status, 403, JSON.stringify(early.json));

      const pushedAt = Date.now();
      const pushed = await a.admin(
        'POST',
        '/v1/policy',
        signedPolicy(testPolicy(dir, [alice], 2), root.privateKey),
      );
      assert.equal(pushed.status, 201, JSON.stringify(pushed.json));
      await waitFor(
        'the agent held by B to hold policy version 2',
        async () => (heldVersion() === 2 ? true : undefined),
        {
          timeoutMs: POLICY_DEADLINE_MS[dialect],
          intervalMs: 20,
        },
      );
      t.diagnostic(`policy version 2 reached the agent ${Date.now() - pushedAt} ms after the push on A`);
      assert.ok(b.server.app.channels.heldNodeIds().length === 1, 'B still holds the channel it came down');

      const mark = command(alice, { nodes: ['web-policy'] }, 'mark');
      const issued = await a.admin('POST', '/v1/commands', mark);
      assert.equal(issued.status, 202, JSON.stringify(issued.json));
      const view: CommandView = await answered(b, mark.command.id);
      assert.equal(view.targets![0]!.state, 'succeeded', JSON.stringify(view.targets));
      assert.equal(marks(join(dir, 'marks')), 1, 'the action ran on the host');
    });
  });
}
