import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Command, type CommandView, signCommand, type TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine } from '../support/fleet.js';
import { waitFor } from '../support/processes.js';
import { assertNoStackTrace, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

// What a node writes, with a terminal escape in its stderr that must not reach the operator's terminal.
const SPEAK =
  'process.stdout.write("out one\\nout two\\n");process.stderr.write("err one\\nerr two \\u001b[31mred\\n")';

// `muster run` as the contract has it (issue 11): the key says which operator signs; --wait shows
// what each node wrote as its answer arrives; `commands show` takes an id prefix and shows stdout
// and stderr as lines under their own captions.
describe('run by key, node output in run --wait and commands show, id prefixes', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let key: string;
  after(() => sandbox.cleanup());

  /** `muster ARGS…` against the server; its flags go before a `--`, where they are still flags. */
  const cli = (...args: string[]) => {
    const dash = args.indexOf('--');
    const at = dash < 0 ? args.length : dash;
    return sandbox.run([...args.slice(0, at), ...server.adminFlags, ...args.slice(at)]);
  };

  before(async () => {
    server = await sandbox.startServer();
    key = join(sandbox.tempDir('operator'), 'alice.key');
    assert.equal((await sandbox.run(['operator', 'keygen', '--out', key])).code, 0);
    assert.equal(
      (await cli('operator', 'add', 'alice', '--pubkey', `${key}.pub`, '--profiles', '*')).code,
      0,
    );
    // The policy: alice, and an action that writes to both streams.
    const draft = join(sandbox.tempDir('policy'), 'draft.json');
    assert.equal((await cli('policy', 'edit', '--out', draft)).code, 0);
    const policy = JSON.parse(readFileSync(draft, 'utf8'));
    policy.profiles.default.actions.speak = {
      argv: [process.execPath, '-e', SPEAK],
      timeoutSec: 10,
      maxOutputBytes: 4096,
    };
    writeFileSync(draft, JSON.stringify(policy));
    const signed = `${draft}.signed`;
    const sign = await sandbox.run(['policy', 'sign', draft, '--out', signed, '--data-dir', server.dataDir]);
    assert.equal(sign.code, 0, describeResult(sign));
    assert.equal((await cli('policy', 'push', signed)).code, 0);

    const token = await sandbox.json<TokenCreated>([
      'token',
      'create',
      '--name',
      'out-1',
      ...server.adminFlags,
    ]);
    sandbox.spawn([
      ...agentArgsFromJoinLine(token.agentCommand, server.agentUrl),
      '--data-dir',
      sandbox.tempDir('agent'),
    ]);
    // Held as the server sees it, not as the agent's log words it.
    const adminToken = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    await waitFor('the agent channel', async () => {
      const metrics = await fetch(`${server.adminUrl}/metrics`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      return /^muster_channels_held [1-9]/m.test(await metrics.text()) ? true : undefined;
    });
  });

  test('run --key without --operator signs as the operator the policy lists with that key; --wait prints the output', async () => {
    const run = await cli('run', '--target', 'out-1', '--wait', '--key', key, '--', 'speak');
    assert.equal(run.code, 0, describeResult(run));
    assert.match(run.stdout, /out-1\s+succeeded \(exit 0\)/);
    assert.match(
      run.stdout,
      /^ {4}stdout:\n {6}out one\n {6}out two\n {4}stderr:\n {6}err one\n {6}err two \?\[31mred$/m,
    );
    assert.ok(!run.stdout.includes('\u001b'), 'no escape character reaches the terminal');
    assert.match(run.stdout, /1 node\(s\): 1 succeeded/);
    const [listed] = (await sandbox.json<{ items: CommandView[] }>(['commands', 'ls', ...server.adminFlags]))
      .items;
    assert.equal(listed!.operator, 'alice');
  });

  test('commands show takes a unique id prefix and shows stderr as lines under its caption', async () => {
    const [listed] = (await sandbox.json<{ items: CommandView[] }>(['commands', 'ls', ...server.adminFlags]))
      .items;
    const shown = await cli('commands', 'show', listed!.id.slice(0, 8));
    assert.equal(shown.code, 0, describeResult(shown));
    assert.match(shown.stdout, new RegExp(`^command {3}${listed!.id}$`, 'm'));
    assert.match(
      shown.stdout,
      /^stdout:\n {2}out one\n {2}out two\nstderr:\n {2}err one\n {2}err two \?\[31mred$/m,
    );
    assert.doesNotMatch(shown.stdout, /err one\?err two/, 'newlines in stderr stay newlines');
    assert.ok(!shown.stdout.includes('\u001b'), 'no escape character reaches the terminal');
  });

  test('a prefix of several commands is a usage error naming them; a prefix of none fails', async () => {
    // Two commands whose ids share a prefix, as alice's CLI would sign them.
    const privateKey = createPrivateKey(readFileSync(key, 'utf8'));
    const adminToken = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    for (const id of ['cafe0001-first', 'cafe0002-second']) {
      const now = Date.now();
      const command: Command = {
        v: 1,
        id,
        nonce: randomBytes(18).toString('base64url'),
        issuedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + 60_000).toISOString(),
        operator: 'alice',
        target: { nodes: ['out-1'] },
        action: 'uptime',
        args: {},
      };
      const res = await fetch(`${server.adminUrl}/v1/commands`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ command, signature: signCommand(command, privateKey) }),
      });
      assert.equal(res.status, 202, await res.text());
    }
    const ambiguous = await cli('commands', 'show', 'cafe');
    assert.equal(ambiguous.code, 2, describeResult(ambiguous));
    assert.match(
      ambiguous.stderr,
      /"cafe" is the start of several command ids: cafe0001-first, cafe0002-second; give more of it/,
    );
    assertNoStackTrace(ambiguous.stderr);
    const one = await cli('commands', 'show', 'cafe0002', '--json');
    assert.equal(one.code, 0, describeResult(one));
    assert.equal((JSON.parse(one.stdout) as CommandView).id, 'cafe0002-second');
    const none = await cli('commands', 'show', 'dead0000');
    assert.equal(none.code, 1, describeResult(none));
    assert.match(none.stderr, /no command dead0000/);
    const short = await cli('commands', 'show', 'caf');
    assert.equal(short.code, 2, describeResult(short));
    assert.match(short.stderr, /"caf" is too short: give at least 4 characters/);
  });

  test('a key that belongs to two operators needs --operator; a key of none is refused with the fix', async () => {
    assert.equal((await cli('operator', 'add', 'bob', '--pubkey', `${key}.pub`, '--profiles', '*')).code, 0);
    // Registered but not yet in a signed policy: said so, with the step that fixes it.
    const carolKey = join(sandbox.tempDir('carol'), 'carol.key');
    assert.equal((await sandbox.run(['operator', 'keygen', '--out', carolKey])).code, 0);
    assert.equal(
      (await cli('operator', 'add', 'carol', '--pubkey', `${carolKey}.pub`, '--profiles', 'web')).code,
      0,
    );
    const pending = await cli('run', '--target', 'out-1', '--key', carolKey, '--', 'uptime');
    assert.equal(pending.code, 1, describeResult(pending));
    assert.match(
      pending.stderr,
      /is registered for carol, but no signed policy lists it yet; run: muster policy edit/,
    );
    const edit = await sandbox.run(['policy', 'edit', '--yes', ...server.adminFlags], { EDITOR: 'true' });
    assert.equal(edit.code, 0, describeResult(edit));
    assert.match(edit.stdout, /^adds operator bob \(profiles \*\)$/m);

    const two = await cli('run', '--target', 'out-1', '--key', key, '--', 'uptime');
    assert.equal(two.code, 2, describeResult(two));
    assert.match(
      two.stderr,
      /belongs to operators alice, bob in the policy; pass --operator NAME to say which/,
    );
    assertNoStackTrace(two.stderr);
    const asBob = await cli(
      'run',
      '--target',
      'out-1',
      '--wait',
      '--key',
      key,
      '--operator',
      'bob',
      '--',
      'uptime',
    );
    assert.equal(asBob.code, 0, describeResult(asBob));
    assert.equal(
      (await sandbox.json<{ items: CommandView[] }>(['commands', 'ls', ...server.adminFlags])).items[0]!
        .operator,
      'bob',
    );

    const daveKey = join(sandbox.tempDir('dave'), 'dave.key');
    assert.equal((await sandbox.run(['operator', 'keygen', '--out', daveKey])).code, 0);
    const stranger = await cli('run', '--target', 'out-1', '--key', daveKey, '--', 'uptime');
    assert.equal(stranger.code, 1, describeResult(stranger));
    assert.match(
      stranger.stderr,
      /belongs to no operator in the policy; register it with: muster operator add NAME --pubkey \S+dave\.key\.pub --profiles/,
    );
  });
});
