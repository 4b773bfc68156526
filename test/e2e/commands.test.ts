import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { CommandView, TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine } from '../support/fleet.js';
import { waitFor } from '../support/processes.js';
import { describeResult, Sandbox } from '../support/sandbox.js';

// The operator's whole path with real processes: a key made on their machine, registered,
// put into a root-signed policy, and a command signed by the CLI that a real agent runs.
describe('an operator runs a signed command from the CLI', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('keygen, add, policy edit, run --wait: the agent runs it and the CLI says every node succeeded', async () => {
    const server = await sandbox.startServer();
    const home = sandbox.tempDir('operator');
    const key = join(home, 'operator.key');
    const keygen = await sandbox.run(['operator', 'keygen', '--out', key]);
    assert.equal(keygen.code, 0, describeResult(keygen));
    const add = await sandbox.run([
      'operator',
      'add',
      'alice',
      '--pubkey',
      `${key}.pub`,
      '--profiles',
      '*',
      ...server.adminFlags,
    ]);
    assert.equal(add.code, 0, describeResult(add));
    // An editor that saves the draft as it is: the next version with alice in it.
    const edit = await sandbox.run(['policy', 'edit', '--yes', ...server.adminFlags], { EDITOR: 'true' });
    assert.equal(edit.code, 0, describeResult(edit));
    assert.match(edit.stdout, /policy version 1 signed and pushed/);
    const ls = await sandbox.run(['operator', 'ls', ...server.adminFlags]);
    assert.match(ls.stdout, /alice\s+-\s+\*\s+yes/);

    const join_ = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'cmd-e2e',
      ...server.adminFlags,
    ]);
    assert.match(join_.agentCommand, /--root-pin sha256:[0-9a-f]{64}/);
    const agent = sandbox.spawn([
      ...agentArgsFromJoinLine(join_.agentCommand, server.agentUrl),
      '--data-dir',
      sandbox.tempDir('agent'),
    ]);
    await waitFor('the agent channel', async () =>
      /channel to the control plane is open/.test(agent.stderr) ? true : undefined,
    );

    const signer = ['--key', key, '--operator', 'alice', ...server.adminFlags];
    const run = await sandbox.run(['run', '--target', 'cmd-e2e', '--wait', ...signer, '--', 'uptime']);
    assert.equal(run.code, 0, describeResult(run));
    assert.match(run.stdout, /cmd-e2e\s+succeeded \(exit 0\)/);
    assert.match(run.stdout, /1 node\(s\): 1 succeeded/);

    const list = await sandbox.json<{ items: CommandView[] }>([
      'commands',
      'ls',
      '--json',
      ...server.adminFlags,
    ]);
    assert.equal(list.items.length, 1);
    const shown = await sandbox.run(['commands', 'show', list.items[0]!.id, ...server.adminFlags]);
    assert.match(shown.stdout, /cmd-e2e\s+succeeded\s+0/);
    assert.match(shown.stdout, /load average/);

    // Refused by the policy: exit 1 with the reason; a usage mistake: exit 2.
    const refused = await sandbox.run(['run', '--target', 'all', ...signer, '--', 'reboot']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /action reboot is not allowed on profile default/);
    const usage = await sandbox.run(['run', ...signer, '--', 'uptime']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--target is required/);
    assert.equal((await agent.stop('SIGTERM')).code, 0);
  });
});
