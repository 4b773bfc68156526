import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type CommandSignature,
  type NodeView,
  type Policy,
  type SignedCommand,
  signCommand,
  type TokenCreated,
} from '@muster/proto';
import {
  command,
  dataDirRoot,
  makeOperator,
  marks,
  type Operator,
  signedPolicy,
} from '../support/commands.js';
import { agentArgsFromJoinLine } from '../support/fleet.js';
import { type InProcessServer, startInProcessServer } from '../support/in-process.js';
import { type MusterProcess, waitFor } from '../support/processes.js';
import { Sandbox } from '../support/sandbox.js';

// Dual control cannot be faked by the control plane: these tests play a server that lies, and
// hand a real `muster agent` process commands straight down its channel, past every check the
// server makes. The agent counts distinct valid signatures against its own copy of the policy.
describe('an agent counts the approvals of a command itself', () => {
  const sandbox = new Sandbox();
  let t: InProcessServer;
  let agent: MusterProcess;
  let nodeId: string;
  const ops: Record<string, Operator> = {};
  const dir = sandbox.tempDir('actions');
  const marksFile = join(dir, 'marks');

  const inject = (signed: SignedCommand) =>
    assert.ok(t.server.app.channels.sendTo(nodeId, { type: 'command', signed }), 'the node holds a channel');
  const logLines = () =>
    agent.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  /** The reason the agent logged for refusing this command. */
  const refusal = (id: string) =>
    waitFor(`the agent to refuse ${id}`, async () => {
      const entry = logLines().find((l) => l.msg === 'refused a command' && l.commandId === id);
      return entry ? String(entry.reason) : undefined;
    });
  const sig = (signed: SignedCommand, name: string): CommandSignature => ({
    operator: name,
    signature: signCommand(signed.command, ops[name]!.privateKey),
  });
  const withSignatures = (signed: SignedCommand, signatures: CommandSignature[]): SignedCommand => ({
    command: signed.command,
    signatures,
  });

  before(async () => {
    t = await startInProcessServer(sandbox, 'sqlite', { 'heartbeat-interval': '1s' });
    const root = dataDirRoot(t.server.identity.paths.dir);
    for (const name of ['alice', 'carl']) ops[name] = makeOperator(name);
    // alice's key listed a second time under another name: still one operator.
    ops.alias = { ...ops.alice!, name: 'alias' };
    const policy: Policy = {
      version: 1,
      operators: Object.values(ops).map((op) => ({
        name: op.name,
        publicKey: op.publicKey,
        profiles: ['*'],
      })),
      profiles: {
        default: {
          actions: {
            mark: {
              argv: ['/bin/sh', '-c', `echo ran >> ${marksFile}`],
              timeoutSec: 10,
              maxOutputBytes: 1024,
              approvals: 2,
            },
          },
        },
      },
    };
    assert.equal((await t.admin('POST', '/v1/policy', signedPolicy(policy, root.privateKey))).status, 201);
    const token = (await t.admin('POST', '/v1/tokens', { name: 'dual-1' })).json as TokenCreated;
    agent = sandbox.spawn([
      ...agentArgsFromJoinLine(token.agentCommand, t.server.agentUrl),
      '--data-dir',
      sandbox.tempDir('agent'),
      '--log-level',
      'debug',
    ]);
    await waitFor('the agent to hold the policy and a channel', async () =>
      logLines().some((l) => l.msg === 'holding command policy') &&
      /channel to the control plane is open/.test(agent.stderr)
        ? true
        : undefined,
    );
    nodeId = ((await t.admin('GET', '/v1/nodes')).json.items as NodeView[]).find(
      (n) => n.name === 'dual-1',
    )!.id;
    await waitFor('the channel on the server', async () =>
      t.server.app.channels.heldNodeIds().includes(nodeId) ? true : undefined,
    );
  });
  after(async () => {
    if (agent?.running) await agent.stop('SIGTERM');
    await t?.close();
    await sandbox.cleanup();
  });

  test('one signature, two by one operator, one key under two names, or a forged second: each refused, never run', async () => {
    const signed = command(ops.alice!, { nodes: ['dual-1'] }, 'mark');
    inject(signed);
    assert.match(
      await refusal(signed.command.id),
      /action mark needs the signatures of 2 distinct operators; 1 valid \(alice\)/,
    );
    const elsewhere = command(ops.carl!, { nodes: ['dual-1'] }, 'mark');
    const cases: Array<[(c: SignedCommand) => CommandSignature[], RegExp]> = [
      [(c) => [sig(c, 'alice'), sig(c, 'alice')], /operator alice's key has signed already/],
      [(c) => [sig(c, 'alice'), sig(c, 'alias')], /operator alias's key has signed already/],
      // What a server making up an approval would send: carl's name and any bytes, or carl's
      // real signature lifted from another command.
      [
        (c) => [sig(c, 'alice'), { operator: 'carl', signature: randomBytes(64).toString('base64') }],
        /the signature of operator carl does not verify/,
      ],
      [(c) => [sig(c, 'alice'), sig(elsewhere, 'carl')], /the signature of operator carl does not verify/],
      [
        (c) => [sig(c, 'alice'), { ...sig(c, 'carl'), operator: 'mallory' }],
        /operator mallory is not in the policy/,
      ],
    ];
    for (const [signatures, why] of cases) {
      const forged = command(ops.alice!, { nodes: ['dual-1'] }, 'mark');
      inject(withSignatures(forged, signatures(forged)));
      const reason = await refusal(forged.command.id);
      assert.match(reason, /needs the signatures of 2 distinct operators; 1 valid \(alice\)/);
      assert.match(reason, why);
    }
    assert.equal(marks(marksFile), 0, 'nothing ran');

    // A refusal for want of approvals does not use the command up: with a real second
    // operator's signature the very same command runs, once.
    inject(withSignatures(signed, [sig(signed, 'alice'), sig(signed, 'carl')]));
    await waitFor('the approved command to run', async () => (marks(marksFile) === 1 ? true : undefined));
  });
});
