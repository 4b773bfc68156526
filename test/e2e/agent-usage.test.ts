import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanEnv, MUSTER_CLI } from '../support/processes.js';
import { assertNoStackTrace, type CliResult, describeResult, Sandbox } from '../support/sandbox.js';

const PIN = `sha256:${'0'.repeat(64)}`;

/** A usage error: exit 2, the sentence, then where to read more; nothing else. */
function assertUsage(result: CliResult, sentence: string): void {
  assert.equal(result.code, 2, describeResult(result));
  assert.equal(result.stderr, `muster agent: ${sentence}\nSee: muster agent --help\n`);
  assertNoStackTrace(result.stderr);
}

// What an operator gets wrong when starting an agent by hand, and what it answers: every case
// here is a usage error (exit 2), refused before anything is sent or written.
describe('muster agent usage', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('without --server, --ca-pin and a token, an agent holding no identity is a usage error naming what it needs', async () => {
    const dir = join(sandbox.tempDir('agent'), 'data');
    assertUsage(
      await sandbox.run(['agent', '--data-dir', dir]),
      `this agent has no identity in ${dir} yet; to enroll it needs --server, --ca-pin, --token-file (run "muster token create" on the server for the exact line)`,
    );
    assertUsage(
      await sandbox.run(['agent', '--data-dir', dir, '--server', 'https://127.0.0.1:1', '--ca-pin', PIN]),
      `this agent has no identity in ${dir} yet; to enroll it needs --token-file (run "muster token create" on the server for the exact line)`,
    );
    assert.equal(existsSync(dir), false, 'nothing is written for a command line that cannot enroll');
  });

  test('--token-file - with nothing on stdin, a missing file, an empty file or two tokens are refused', async () => {
    const dir = sandbox.tempDir('agent');
    const base = ['agent', '--data-dir', dir, '--server', 'https://127.0.0.1:1', '--ca-pin', PIN];
    assertUsage(await sandbox.run([...base, '--token-file', '-']), '--token-file: stdin holds no join token');
    const missing = join(dir, 'nosuch');
    assertUsage(
      await sandbox.run([...base, '--token-file', missing]),
      `--token-file: cannot read ${missing} (ENOENT)`,
    );
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n', { mode: 0o600 });
    assertUsage(
      await sandbox.run([...base, '--token-file', empty]),
      `--token-file: ${empty} holds no join token`,
    );
    const two = join(dir, 'two');
    writeFileSync(two, 'mjt_a\nmjt_b\n', { mode: 0o600 });
    assertUsage(
      await sandbox.run([...base, '--token-file', two]),
      `--token-file: ${two} does not hold a single join token (it has spaces or several lines)`,
    );
    const one = join(dir, 'one');
    writeFileSync(one, 'mjt_a\n', { mode: 0o600 });
    assertUsage(
      await sandbox.run([...base, '--token-file', one, '--token', 'mjt_a']),
      'invalid configuration: --token and --token-file exclude each other',
    );
  });

  test('--token-file - on a terminal is refused at once rather than waiting for input that never ends', () => {
    const dir = sandbox.tempDir('agent');
    const line = [process.execPath, MUSTER_CLI, 'agent', '--data-dir', dir, '--server', 'https://127.0.0.1:1']
      .concat(['--ca-pin', PIN, '--token-file', '-'])
      .join(' ');
    // util-linux script(1) gives the agent a pseudo-terminal as stdin, as an operator's shell does.
    const result = spawnSync('script', ['-qec', line, '/dev/null'], {
      cwd: sandbox.cwd,
      env: cleanEnv(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 20_000,
    });
    assert.equal(result.status, 2, `${result.stdout}${result.stderr}`);
    assert.match(
      result.stdout,
      /^muster agent: --token-file -: stdin is a terminal; pipe the token in, as the join line does \(printf '%s' TOKEN \| muster agent … --token-file -\)\r?$/m,
    );
  });

  test('a literal token in MUSTER_JOIN_TOKEN is refused, pointing at MUSTER_JOIN_TOKEN_FILE', async () => {
    const dir = sandbox.tempDir('agent');
    assertUsage(
      await sandbox.run(['agent', '--data-dir', dir, '--server', 'https://127.0.0.1:1', '--ca-pin', PIN], {
        MUSTER_JOIN_TOKEN: 'mjt_literal',
      }),
      'MUSTER_JOIN_TOKEN is not read, a secret does not belong in the environment: put the token in a file and set MUSTER_JOIN_TOKEN_FILE to its path',
    );
  });

  test('--help gives the token flag and the token file their own names', async () => {
    const help = await sandbox.run(['agent', '--help']);
    assert.equal(help.code, 0, describeResult(help));
    assert.match(
      help.stdout,
      /^ {2}--token-file FILE +read the one-time join token from FILE, or from stdin with - .*\[MUSTER_JOIN_TOKEN_FILE\]$/m,
    );
    assert.match(
      help.stdout,
      /^ {2}--token TOKEN +the join token itself; less safe than --token-file, since every local user can read it in ps$/m,
    );
    assert.match(help.stdout, /printf '%s' 'mjt_…' \| muster agent .* --token-file -$/m);
  });
});
