import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type NodeView, receiptSignatureValid, type SignedCommand, type TokenCreated } from '@muster/proto';
import {
  answered,
  command,
  dataDirRoot,
  makeOperator,
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

for (const dialect of dialects()) {
  describe(`signed commands from operator to receipt (${dialect})`, () => {
    const sandbox = new Sandbox();
    let t: InProcessServer;
    let root: ReturnType<typeof dataDirRoot>;
    let alice: Operator;
    let bob: Operator;
    const agents: AgentRun[] = [];
    const policyDir = sandbox.tempDir('actions');

    before(async () => {
      t = await startInProcessServer(sandbox, dialect, { 'heartbeat-interval': '1s' });
      root = dataDirRoot(t.server.identity.paths.dir);
      alice = makeOperator('alice');
      bob = makeOperator('bob');
      const pushed = await t.admin(
        'POST',
        '/v1/policy',
        signedPolicy(testPolicy(policyDir, [alice, bob]), root.privateKey),
      );
      assert.equal(pushed.status, 201, JSON.stringify(pushed.json));
      for (const [profile, names] of [
        ['web', ['web-1', 'web-2']],
        ['db', ['db-1']],
      ] as const) {
        const created = await t.admin('POST', '/v1/tokens', { profile, uses: names.length });
        const join = created.json as TokenCreated;
        // The join line pins the fleet root the server names.
        assert.match(join.agentCommand, new RegExp(`--root-pin ${root.pin}`));
        for (const name of names)
          agents.push(
            startAgent(sandbox, {
              server: new URL(t.server.agentUrl),
              caPin: t.server.identity.ca.pin,
              rootPin: root.pin,
              token: join.secret,
              name,
            }),
          );
      }
      await waitFor('three channels', async () => (t.server.app.channels.size === 3 ? true : undefined));
    });
    after(async () => {
      await Promise.all(agents.map((a) => a.stop()));
      await t?.close();
      sandbox.cleanup();
    });

    const issue = (signed: SignedCommand) => t.admin('POST', '/v1/commands', signed);

    test("a command runs on every node it targets and comes back with receipts the node's certificate verifies", async () => {
      const signed = command(alice, { profile: 'web' }, 'echo', { text: 'hello fleet' });
      const res = await issue(signed);
      assert.equal(res.status, 202, JSON.stringify(res.json));
      assert.deepEqual(
        res.json.targets.map((x: { name: string }) => x.name),
        ['web-1', 'web-2'],
      );
      const view = await answered(t, signed.command.id);
      assert.deepEqual(view.summary, { succeeded: 2 });
      for (const target of view.targets!) {
        const receipt = target.receipt!;
        assert.equal(receipt.stdoutTail, 'hello fleet\n');
        assert.equal(receipt.exitCode, 0);
        const node = (await t.admin('GET', `/v1/nodes/${target.nodeId}`)).json as NodeView;
        assert.ok(receiptSignatureValid(receipt, node.cert.pem!), `the receipt of ${target.name} verifies`);
      }
      // What the operator signed is what the server keeps, byte for byte.
      assert.deepEqual(view.signed, signed);
      const ledger = await t.admin(
        'GET',
        `/v1/ledger/decisions?subject=command:${signed.command.id}&limit=10`,
      );
      const kinds = ledger.json.items.map((d: { kind: string }) => d.kind).sort();
      assert.ok(
        kinds.includes('command.issued') &&
          kinds.includes('command.delivered') &&
          kinds.includes('command.answered'),
        kinds.join(),
      );
      // Every node's answer is in the ledger, with the hash of the exact receipt it sent.
      const answers = ledger.json.items
        .filter((d: { kind: string }) => d.kind === 'command.answered')
        .flatMap((d: { data: { answers: Array<{ nodeId: string }> } }) => d.data.answers);
      assert.deepEqual(
        answers.map((a: { nodeId: string }) => a.nodeId).sort(),
        view.targets!.map((x) => x.nodeId).sort(),
      );
      const events = await t.admin('GET', '/v1/events?kind=command.answered&limit=100');
      const mine = events.json.items.filter(
        (e: { data: { commandId?: string } }) => e.data.commandId === signed.command.id,
      );
      assert.ok(mine.length >= 1);
    });

    test('the server refuses what the policy does not allow, saying why, and records nothing', async () => {
      const cases: Array<[string, SignedCommand, number, RegExp]> = [];
      const tampered = command(alice, { nodes: ['web-1'] }, 'echo', { text: 'fine' });
      tampered.command.args.text = 'changed';
      cases.push(['a tampered envelope', tampered, 400, /signature does not verify/]);
      const forged = command(bob, { nodes: ['web-1'] }, 'echo', { text: 'x' }, { operator: 'alice' });
      cases.push(["another operator's signature", forged, 400, /signature does not verify/]);
      cases.push([
        'an unknown operator',
        command(makeOperator('carol'), { all: true }, 'echo', { text: 'x' }),
        403,
        /operator carol is not in the policy/,
      ]);
      cases.push([
        'an operator on a profile not theirs',
        command(bob, { nodes: ['web-1'] }, 'echo', { text: 'x' }),
        403,
        /bob may not run commands on profile web/,
      ]);
      cases.push([
        'an action outside the allowlist',
        command(alice, { nodes: ['web-1'] }, 'reboot'),
        403,
        /action reboot is not allowed on profile web/,
      ]);
      cases.push([
        'shell metacharacters in an argument',
        command(alice, { nodes: ['web-1'] }, 'echo', { text: 'x; rm -rf /' }),
        400,
        /argument text does not match/,
      ]);
      cases.push([
        'a ".." path',
        command(alice, { nodes: ['web-1'] }, 'cat-file', { path: '/var/../etc/shadow' }),
        400,
        /argument path contains a "\.\." path segment/,
      ]);
      cases.push([
        'a too long argument',
        command(alice, { nodes: ['web-1'] }, 'echo', { text: 'a'.repeat(300) }),
        400,
        /argument text is too long/,
      ]);
      cases.push([
        'metacharacters for a shell action',
        command(alice, { nodes: ['web-1'] }, 'shell-echo', { word: '$(id)' }),
        400,
        /shell metacharacters/,
      ]);
      cases.push([
        'an argument the action lacks',
        command(alice, { nodes: ['web-1'] }, 'echo', { text: 'x', extra: 'y' }),
        400,
        /extra is not an argument/,
      ]);
      const now = Date.now();
      cases.push([
        'an expired command',
        command(
          alice,
          { nodes: ['web-1'] },
          'mark',
          {},
          {
            issuedAt: new Date(now - 120_000).toISOString(),
            expiresAt: new Date(now - 60_000).toISOString(),
          },
        ),
        400,
        /expired/,
      ]);
      cases.push([
        'a command issued 10 min in the future',
        command(
          alice,
          { nodes: ['web-1'] },
          'mark',
          {},
          {
            issuedAt: new Date(now + 600_000).toISOString(),
            expiresAt: new Date(now + 700_000).toISOString(),
          },
        ),
        400,
        /in the future/,
      ]);
      cases.push([
        'an unknown node',
        command(alice, { nodes: ['web-9'] }, 'mark'),
        422,
        /no active node is called web-9/,
      ]);
      for (const [what, signed, status, reason] of cases) {
        const res = await issue(signed);
        assert.equal(res.status, status, `${what}: ${JSON.stringify(res.json)}`);
        assert.match(res.json.detail, reason, what);
        assert.equal(
          (await t.admin('GET', `/v1/commands/${signed.command.id}`)).status,
          404,
          `${what} is not recorded`,
        );
      }
    });

    test('a command replayed through the API is refused with 409, by id and by nonce', async () => {
      const signed = command(alice, { nodes: ['web-1'] }, 'echo', { text: 'once' });
      assert.equal((await issue(signed)).status, 202);
      const again = await issue(signed);
      assert.equal(again.status, 409);
      assert.match(again.json.detail, /replay is refused/);
      const sameNonce = command(
        alice,
        { nodes: ['web-1'] },
        'echo',
        { text: 'once' },
        { nonce: signed.command.nonce },
      );
      assert.equal((await issue(sameNonce)).status, 409);
      await answered(t, signed.command.id);
    });

    test('a policy with a lower version, another signer or a broken pattern is refused; the one in force stays', async () => {
      const older = await t.admin(
        'POST',
        '/v1/policy',
        signedPolicy(testPolicy(policyDir, [alice]), root.privateKey),
      );
      assert.equal(older.status, 409);
      const stranger = makeOperator('stranger');
      const otherKey = await t.admin(
        'POST',
        '/v1/policy',
        signedPolicy(testPolicy(policyDir, [alice], 5), stranger.privateKey),
      );
      assert.equal(otherKey.status, 400);
      assert.match(otherKey.json.detail, /not signed by the fleet root key/);
      const broken = testPolicy(policyDir, [alice], 6);
      broken.profiles.web!.actions.echo!.args!.text!.pattern = '([a-z';
      const bad = await t.admin('POST', '/v1/policy', signedPolicy(broken, root.privateKey));
      assert.equal(bad.status, 400);
      assert.match(bad.json.detail, /not a regular expression/);
      const state = await t.admin('GET', '/v1/policy');
      assert.equal(state.json.current.policy.version, 1);
      assert.equal(state.json.rootFingerprint, root.pin);
    });
  });
}

// Two replicas on one PostgreSQL are one control plane: a command issued on either reaches an
// agent whichever replica holds its channel, and both report its receipt.
if (dialects().includes('postgres'))
  describe('signed commands across two replicas (postgres)', () => {
    const sandbox = new Sandbox();
    after(() => sandbox.cleanup());

    test('a command issued on replica A reaches the agent held by replica B; both show the receipt', async () => {
      const a = await startInProcessServer(sandbox, 'postgres', { 'heartbeat-interval': '1s' });
      const b = await startInProcessServer(sandbox, 'postgres', { 'heartbeat-interval': '1s' }, undefined, a);
      let agent: AgentRun | undefined;
      try {
        const root = dataDirRoot(a.dataDir);
        const alice = makeOperator('alice');
        const policy = signedPolicy(testPolicy(sandbox.tempDir('actions'), [alice]), root.privateKey);
        assert.equal((await a.admin('POST', '/v1/policy', policy)).status, 201);
        const join = (await a.admin('POST', '/v1/tokens', { profile: 'web' })).json as TokenCreated;
        agent = startAgent(sandbox, {
          server: new URL(b.server.agentUrl),
          caPin: b.server.identity.ca.pin,
          rootPin: root.pin,
          token: join.secret,
          name: 'web-b',
        });
        await waitFor('the agent channel on replica B', async () =>
          b.server.app.channels.size === 1 ? true : undefined,
        );
        assert.equal(a.server.app.channels.size, 0);
        const signed = command(alice, { nodes: ['web-b'] }, 'echo', { text: 'across replicas' });
        assert.equal((await a.admin('POST', '/v1/commands', signed)).status, 202);
        for (const replica of [a, b]) {
          const view = await answered(replica, signed.command.id);
          assert.equal(view.targets![0]!.state, 'succeeded');
          assert.equal(view.targets![0]!.receipt!.stdoutTail, 'across replicas\n');
        }
      } finally {
        await agent?.stop();
        await b.close();
        await a.close();
      }
    });
  });
