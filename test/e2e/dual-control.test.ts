import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ApiTokenCreated, CommandList, TokenCreated } from '@muster/proto';
import { launchChromium, watchForInjection } from '../support/browser.js';
import { agentArgsFromJoinLine } from '../support/fleet.js';
import { waitFor } from '../support/processes.js';
import { describeResult, dialects, Sandbox } from '../support/sandbox.js';

// Dual control with real processes: a policy action that needs two operators, alice runs it and
// it waits, bob approves with his own key, and two real agents run it only then.
for (const dialect of dialects()) {
  describe(`dual control through the CLI (${dialect})`, () => {
    const sandbox = new Sandbox();
    after(() => sandbox.cleanup());

    test('alice runs, the command waits awaiting_approval, bob approves, both agents run it', async () => {
      const server = await sandbox.startServer(
        dialect === 'postgres' ? { db: await sandbox.postgresDatabase() } : {},
      );
      const admin = server.adminFlags;
      const home = sandbox.tempDir('people');
      /** alice and bob: users with the operator role, an API token each, and a key each. */
      const person = async (name: string) => {
        await sandbox.json(['user', 'add', name, '--role', 'operator', '--json', ...admin]);
        const token = await sandbox.json<ApiTokenCreated>(['apitoken', 'create', '--user', name, ...admin]);
        const tokenFile = join(home, `${name}.token`);
        writeFileSync(tokenFile, `${token.secret}\n`, { mode: 0o600 });
        const key = join(home, `${name}.key`);
        assert.equal((await sandbox.run(['operator', 'keygen', '--out', key])).code, 0);
        return { key, tokenFile, as: ['--url', server.adminUrl, '--token-file', tokenFile] };
      };
      const alice = await person('alice');
      const bob = await person('bob');
      // alice's key is linked by name; bob's is registered under another name, for user bob.
      const addAlice = await sandbox.run([
        'operator',
        'add',
        'alice',
        '--pubkey',
        `${alice.key}.pub`,
        '--profiles',
        '*',
        ...admin,
      ]);
      assert.match(addAlice.stdout, /its key is user alice's/, describeResult(addAlice));
      const addBob = await sandbox.run([
        'operator',
        'add',
        'bob-laptop',
        '--user',
        'bob',
        '--pubkey',
        `${bob.key}.pub`,
        '--profiles',
        '*',
        ...admin,
      ]);
      assert.equal(addBob.code, 0, describeResult(addBob));
      const ls = await sandbox.run(['operator', 'ls', ...admin]);
      assert.match(ls.stdout, /bob-laptop\s+bob\s+\*\s+no/);
      const editor = join(home, 'approvals.mjs');
      writeFileSync(
        editor,
        "import { readFileSync, writeFileSync } from 'node:fs';\n" +
          'const policy = JSON.parse(readFileSync(process.argv[2], "utf8"));\n' +
          'policy.profiles.default.actions.uptime.approvals = 2;\n' +
          'writeFileSync(process.argv[2], JSON.stringify(policy, null, 2));\n',
      );
      const edit = await sandbox.run(['policy', 'edit', '--yes', ...admin], {
        EDITOR: `${process.execPath} ${editor}`,
      });
      assert.match(edit.stdout, /policy version 1 signed and pushed/, describeResult(edit));

      const agents = [];
      for (const name of ['dual-a', 'dual-b']) {
        const join_ = await sandbox.json<TokenCreated>(['token', 'create', '--name', name, ...admin]);
        const agent = sandbox.spawn([
          ...agentArgsFromJoinLine(join_.agentCommand, server.agentUrl),
          '--data-dir',
          sandbox.tempDir(name),
        ]);
        agents.push(agent);
      }
      for (const agent of agents)
        await waitFor('the agent channel', async () =>
          /channel to the control plane is open/.test(agent.stderr) ? true : undefined,
        );

      const run = sandbox.spawn([
        'run',
        '--target',
        'all',
        '--wait',
        '--key',
        alice.key,
        ...alice.as,
        '--',
        'uptime',
      ]);
      const id = await waitFor('alice to be told the command waits', async () => {
        const match =
          /command (\S+) for 2 node\(s\) is awaiting approval: 1 of 2 signature\(s\) \(alice\)/.exec(
            run.stdout,
          );
        return match?.[1];
      });
      assert.match(run.stdout, /another operator approves it with: muster commands approve /);
      const list = await sandbox.json<CommandList>(['commands', 'ls', '--json', ...bob.as]);
      assert.equal(list.items[0]!.state, 'awaiting_approval');
      const table = await sandbox.run(['commands', 'ls', ...bob.as]);
      assert.match(
        table.stdout,
        new RegExp(`${id}.*uptime\\s+awaiting_approval\\s+1/2\\s+2 awaiting_approval`),
      );
      const shown = await sandbox.run(['commands', 'show', id.slice(0, 8), ...bob.as]);
      assert.match(shown.stdout, /state\s+awaiting approval: 1 of 2 signature\(s\) \(alice\)/);
      assert.match(shown.stdout, /dual-a\s+awaiting_approval/);

      // The console's command view says the same, with who has signed.
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        watchForInjection(page);
        await page.goto(`${server.adminUrl}/`);
        await page.getByLabel('Admin token').fill(readFileSync(bob.tokenFile, 'utf8').trim());
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.locator('[data-stream=live]').waitFor();
        await page.goto(`${server.adminUrl}/commands/${id}`);
        const approvals = page.locator('dd[data-field=approvals]');
        assert.equal(await approvals.textContent(), 'awaiting approval: 1 of 2 signatures');
        assert.match((await page.locator('dd[data-field=signers]').textContent()) ?? '', /^alice at /);
        assert.equal(await page.locator('tr[data-node=dual-a] .pill').textContent(), 'awaiting approval');
      } finally {
        await browser.close();
      }

      // alice cannot be her own second operator.
      const self = await sandbox.run(['commands', 'approve', id, '--key', alice.key, ...alice.as]);
      assert.equal(self.code, 1, describeResult(self));
      assert.match(self.stderr, /operator alice has signed this command already/);

      const approve = await sandbox.run(['commands', 'approve', id.slice(0, 8), '--key', bob.key, ...bob.as]);
      assert.equal(approve.code, 0, describeResult(approve));
      assert.match(approve.stdout, /approved command \S+ as bob-laptop: uptime on 2 node\(s\)/);
      assert.match(approve.stdout, /signed by alice, bob-laptop \(user bob\): sent to its nodes/);

      const exit = await run.exited;
      assert.equal(exit.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /dual-a\s+succeeded \(exit 0\)/);
      assert.match(run.stdout, /dual-b\s+succeeded \(exit 0\)/);
      assert.match(run.stdout, /2 node\(s\): 2 succeeded/);
      const ledger = await sandbox.run(['ledger', 'ls', '--actor', 'user:bob', ...admin]);
      assert.match(ledger.stdout, /command\.approved/, describeResult(ledger));

      const again = await sandbox.run(['commands', 'approve', id, '--key', bob.key, ...bob.as]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /is not awaiting approval/);
      for (const agent of agents) assert.equal((await agent.stop('SIGTERM')).code, 0);
    });
  });
}
