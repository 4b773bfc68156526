import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CaStatus, TokenCreated } from '@muster/proto';
import { agentArgsFromJoinLine, reportedAfter, showNode, waitForNode } from '../support/fleet.js';
import { type MusterProcess, waitFor } from '../support/processes.js';
import {
  assertNoStackTrace,
  type CliResult,
  describeResult,
  dialects,
  Sandbox,
  type ServerUnderTest,
} from '../support/sandbox.js';

/** A failed verb: exit code, and one sentence on stderr without a stack trace. */
function assertRefused(result: CliResult, code: 1 | 2, sentence: RegExp): void {
  assert.equal(result.code, code, describeResult(result));
  assert.match(result.stderr.trim(), sentence);
  assert.equal(result.stderr.trim().split('\n').length, code === 2 ? 2 : 1, result.stderr);
  assertNoStackTrace(result.stderr);
}

// `muster ca rotate|status|finish` as an operator runs them, against a real server and agent.
for (const dialect of dialects()) {
  describe(`muster ca rotate, status and finish on ${dialect}`, () => {
    const sandbox = new Sandbox();
    let server: ServerUnderTest;
    let agent: MusterProcess;
    const ca = (...args: string[]) => sandbox.run(['ca', ...args, ...server.adminFlags]);
    const status = () => sandbox.json<CaStatus>(['ca', 'status', ...server.adminFlags]);

    before(async () => {
      server = await sandbox.startServer(
        dialect === 'postgres' ? { db: await sandbox.postgresDatabase() } : {},
      );
    });
    after(() => sandbox.cleanup());

    test('the help teaches the procedure; a finish with nothing to finish and stray arguments are refused', async () => {
      for (const verb of ['rotate', 'finish', 'status']) {
        const help = await sandbox.run(['ca', verb, '--help']);
        assert.equal(help.code, 0);
        assert.match(help.stdout, / {2}1\. muster ca rotate .+\n.+\n {2}2\. muster ca finish /);
      }
      assert.match((await sandbox.run(['ca', 'finish', '--help'])).stdout, /--force/);
      assertRefused(
        await ca('finish'),
        1,
        /^muster ca finish: no CA rotation is in progress; start one with "muster ca rotate" \(409\)$/,
      );
      assertRefused(await ca('finish', 'now'), 2, /^muster ca finish: unexpected argument "now"/);
    });

    test('a rotation moves the running agent to the new root; finish waits for the node that is away, or is forced', async () => {
      const token = await sandbox.json<TokenCreated>([
        'token',
        'create',
        '--uses',
        '2',
        ...server.adminFlags,
      ]);
      const start = (name: string) =>
        sandbox.spawn([
          ...agentArgsFromJoinLine(token.agentCommand, server.agentUrl),
          '--name',
          name,
          '--data-dir',
          sandbox.tempDir(name),
        ]);
      // One host goes away before the rotation and stays on the old root.
      const away = start('cli-away');
      await waitForNode(sandbox, server, 'cli-away', 'reports', reportedAfter(null));
      await away.stop('SIGKILL');
      agent = start('cli-running');
      await waitForNode(sandbox, server, 'cli-running', 'reports', reportedAfter(null));
      const oldPin = (await status()).ca.pin;

      const rotated = await ca('rotate');
      assert.equal(rotated.code, 0, describeResult(rotated));
      assert.match(
        rotated.stdout,
        /^Rotation started: the new fleet CA CN=Muster fleet CA \S+ \S+, O=Muster \(pin sha256:[0-9a-f]{64}\)/,
      );
      assert.match(rotated.stdout, /2 active nodes are on the old root/);
      assertRefused(
        await ca('rotate'),
        1,
        /^muster ca rotate: a CA rotation is already in progress \(started .+\); finish it with "muster ca finish" before starting another \(409\)$/,
      );

      const moved = await waitFor('the running agent to move to the new root', async () => {
        const s = await status();
        return s.rotation?.nodesOnRetiring === 1 && s.nodes.onThisCa === 1 ? s : undefined;
      });
      assert.equal(moved.rotation?.retiring.pin, oldPin);
      const text = await ca('status');
      assert.equal(text.code, 0);
      assert.match(text.stdout, /^rotation {4}in progress since /m);
      assert.match(text.stdout, /^ {2}waiting {3}1 active node still on the old root$/m);

      assertRefused(
        await ca('finish'),
        1,
        /^muster ca finish: 1 active node is still on the old root; .*--force.* \(409\)$/,
      );
      const forced = await ca('finish', '--force', '--json');
      assert.equal(forced.code, 0, describeResult(forced));
      const after = JSON.parse(forced.stdout) as CaStatus;
      assert.equal(after.rotation, null);
      assert.equal(after.ca.pin, moved.ca.pin);
      assert.doesNotMatch((await ca('status')).stdout, /rotation/);
      const joinLine = await sandbox.json<TokenCreated>(['token', 'create', ...server.adminFlags]);
      assert.match(joinLine.agentCommand, new RegExp(`--ca-pin ${after.ca.pin} `));

      const seen = (await showNode(sandbox, server, 'cli-running')).lastSeenAt;
      await waitForNode(sandbox, server, 'cli-running', 'reports after the finish', reportedAfter(seen));
      assert.equal(agent.running, true, 'the agent never restarted');
    });
  });
}
