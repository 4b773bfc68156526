import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PolicyState } from '@muster/proto';
import { cleanEnv, DEADLINE_MS, MUSTER_CLI, waitFor } from '../support/processes.js';
import { assertNoStackTrace, describeResult, Sandbox, type ServerUnderTest } from '../support/sandbox.js';

/**
 * An "editor" for `policy edit`: a node script that changes the file it is given the way
 * `body` says (`policy` is the parsed draft; what it returns is written back, a string as is).
 */
function editor(sandbox: Sandbox, name: string, body: string): string {
  const file = join(sandbox.tempDir('editor'), `${name}.mjs`);
  writeFileSync(
    file,
    `import { readFileSync, writeFileSync } from 'node:fs';\n` +
      `const file = process.argv[2];\n` +
      `const policy = JSON.parse(readFileSync(file, 'utf8'));\n` +
      `const out = ((policy) => { ${body} })(policy);\n` +
      `writeFileSync(file, typeof out === 'string' ? out : JSON.stringify(out, null, 2));\n`,
  );
  return `${process.execPath} ${file}`;
}

/**
 * `muster ARGS…` on a terminal of its own (util-linux `script` gives it a pseudo-terminal), typing
 * `answer` once `prompt` shows; returns the exit code and everything the terminal showed.
 */
async function atTerminal(
  args: readonly string[],
  env: Record<string, string>,
  prompt: RegExp,
  answer: string,
): Promise<{ code: number | null; screen: string }> {
  const line = [process.execPath, MUSTER_CLI, ...args]
    .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
    .join(' ');
  const child = spawn('script', ['-q', '-e', '-f', '-c', line, '/dev/null'], {
    env: cleanEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    screen += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    screen += chunk;
  });
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
  try {
    await waitFor(`the prompt ${prompt}`, async () => (prompt.test(screen) ? true : undefined));
    child.stdin.write(`${answer}\r`);
    const code = await Promise.race([
      closed,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no exit:\n${screen}`)), DEADLINE_MS),
      ),
    ]);
    return { code, screen };
  } finally {
    child.kill('SIGKILL');
  }
}

// `policy edit` as an operator uses it (issue 11): it shows what the edit changes, asks before
// signing, signs nothing when nothing changed, and never loses an edit that could not be pushed.
describe('policy edit: diff, confirmation, unchanged, kept edits', () => {
  const sandbox = new Sandbox();
  let server: ServerUnderTest;
  let tmp: string;
  let key: string;
  after(() => sandbox.cleanup());

  before(async () => {
    server = await sandbox.startServer();
    key = join(sandbox.tempDir('operator'), 'alice.key');
    assert.equal((await sandbox.run(['operator', 'keygen', '--out', key])).code, 0);
    // Kept edits land in the CLI's temp dir: the sandbox's, so they are cleaned up with it.
    tmp = sandbox.tempDir('tmp');
  });

  const edit = (editorLine: string, ...flags: string[]) =>
    sandbox.run(['policy', 'edit', ...flags, ...server.adminFlags], { EDITOR: editorLine, TMPDIR: tmp });
  const version = async () =>
    (await sandbox.json<PolicyState>(['policy', 'show', ...server.adminFlags])).current?.policy.version;
  const keptFile = (stderrOrStdout: string) => {
    const file = /kept in (\S+?\.json)/.exec(stderrOrStdout)?.[1];
    assert.ok(file, `no kept file named in:\n${stderrOrStdout}`);
    return file;
  };

  test('operator add without --profiles is refused with a sentence; --profiles * registers every profile', async () => {
    const bare = await sandbox.run([
      'operator',
      'add',
      'alice',
      '--pubkey',
      `${key}.pub`,
      ...server.adminFlags,
    ]);
    assert.equal(bare.code, 2, describeResult(bare));
    assert.match(
      bare.stderr,
      /--profiles is required: the profiles alice may run commands on .*--profiles '\*' for every profile/,
    );
    assertNoStackTrace(bare.stderr);
    assert.deepEqual(
      (await sandbox.json<{ items: unknown[] }>(['operator', 'ls', ...server.adminFlags])).items,
      [],
    );
    const help = await sandbox.run(['operator', 'add', '--help']);
    assert.match(help.stdout, /--profiles is required/);

    const all = await sandbox.run([
      'operator',
      'add',
      'alice',
      '--pubkey',
      `${key}.pub`,
      '--profiles',
      '*',
      ...server.adminFlags,
    ]);
    assert.equal(all.code, 0, describeResult(all));
    assert.match(all.stdout, /Operator alice registered for profiles \*/);
  });

  test('without a terminal and without --yes nothing is signed; the draft is kept and named', async () => {
    const refused = await edit('true');
    assert.equal(refused.code, 2, describeResult(refused));
    assert.match(refused.stderr, /no terminal to ask on: pass --yes to sign and push version 1/);
    // The diff and the operator it adds were shown before asking.
    assert.match(refused.stdout, /^\+\+\+ policy version 1 \(edited\)$/m);
    assert.match(refused.stdout, /^\+ {6}"name": "alice",$/m);
    assert.match(refused.stdout, /^adds operator alice \(profiles \*\)$/m);
    const kept = keptFile(refused.stderr);
    assert.ok(existsSync(kept), `${kept} still exists`);
    assert.match(readFileSync(kept, 'utf8'), /"alice"/);
    assert.equal(await version(), undefined, 'no policy was pushed');
  });

  test('--yes signs and pushes the change after showing its diff', async () => {
    const first = await edit('true', '--yes');
    assert.equal(first.code, 0, describeResult(first));
    assert.match(first.stdout, /^adds operator alice \(profiles \*\)$/m);
    assert.match(first.stdout, /policy version 1 signed and pushed/);
    assert.equal(await version(), 1);

    const addAction = editor(
      sandbox,
      'add-action',
      `policy.profiles.default.actions.hello = { argv: ['echo', 'hello'], timeoutSec: 5, maxOutputBytes: 1024 };
       return policy;`,
    );
    const second = await edit(addAction, '--yes');
    assert.equal(second.code, 0, describeResult(second));
    assert.match(second.stdout, /^--- policy version 1 \(in force\)$/m);
    assert.match(second.stdout, /^- {2}"version": 1,$/m);
    assert.match(second.stdout, /^\+ {2}"version": 2,$/m);
    assert.match(second.stdout, /^\+ {8}"hello": \{$/m);
    assert.doesNotMatch(second.stdout, /^[-+] .*"uptime"/m, 'lines that did not change are context');
    assert.match(second.stdout, /policy version 2 signed and pushed/);
    assert.equal(await version(), 2);
  });

  test('an edit that changes nothing signs and pushes nothing, and says so', async () => {
    const same = await edit('true');
    assert.equal(same.code, 0, describeResult(same));
    assert.match(
      same.stdout,
      /the policy did not change: nothing was signed or pushed \(version 2 stays in force\)/,
    );
    assert.doesNotMatch(same.stdout, /^\+\+\+/m, 'no diff');
    assert.equal(await version(), 2);
  });

  test('an edit that does not validate is kept in a file named in the error; --from continues from it', async () => {
    const breaks = editor(
      sandbox,
      'break',
      `policy.profiles.default.actions.broken = { argv: 'not a list', timeoutSec: 5, maxOutputBytes: 1024 };
       return policy;`,
    );
    const broken = await edit(breaks, '--yes');
    assert.equal(broken.code, 2, describeResult(broken));
    assert.match(broken.stderr, /the policy at \/profiles\/default\/actions\/broken\/argv/);
    assert.match(
      broken.stderr,
      /nothing was pushed; your edit is kept in \S+\.json \(fix it, then: muster policy edit --from /,
    );
    assertNoStackTrace(broken.stderr);
    const kept = keptFile(broken.stderr);
    assert.ok(existsSync(kept), `${kept} still exists`);
    assert.match(readFileSync(kept, 'utf8'), /"not a list"/, 'the file holds the edit as the user left it');
    assert.equal(await version(), 2);

    const notJson = await edit(editor(sandbox, 'not-json', `return '{ "version": 3,';`), '--yes');
    assert.equal(notJson.code, 2, describeResult(notJson));
    assert.match(notJson.stderr, /is not JSON/);
    assert.equal(readFileSync(keptFile(notJson.stderr), 'utf8'), '{ "version": 3,');

    const fix = editor(
      sandbox,
      'fix',
      `policy.profiles.default.actions.broken.argv = ['echo', 'fixed'];
       return policy;`,
    );
    const resumed = await edit(fix, '--yes', '--from', kept);
    assert.equal(resumed.code, 0, describeResult(resumed));
    assert.match(resumed.stdout, /^\+ {12}"fixed"$/m);
    assert.match(resumed.stdout, /policy version 3 signed and pushed/);
    assert.equal(await version(), 3);
  });

  test('at a terminal it asks before signing: n keeps the edit, y signs and pushes it', async () => {
    const addAction = editor(
      sandbox,
      'asked',
      `policy.profiles.default.actions.asked = { argv: ['echo', 'asked'], timeoutSec: 5, maxOutputBytes: 1024 };
       return policy;`,
    );
    const env = { EDITOR: addAction, TMPDIR: tmp };
    const prompt = /Sign policy version 4 with the fleet root key and push it\? \[y\/N\] /;
    const no = await atTerminal(['policy', 'edit', ...server.adminFlags], env, prompt, 'n');
    assert.equal(no.code, 1, no.screen);
    assert.match(no.screen, /^\+ {8}"asked": \{/m);
    assert.match(no.screen, /nothing was signed or pushed; your edit is kept in /);
    assert.equal(await version(), 3);

    const kept = keptFile(no.screen);
    const yes = await atTerminal(
      ['policy', 'edit', '--from', kept, ...server.adminFlags],
      { ...env, EDITOR: 'true' },
      prompt,
      'y',
    );
    assert.equal(yes.code, 0, yes.screen);
    assert.match(yes.screen, /policy version 4 signed and pushed/);
    assert.equal(await version(), 4);
  });

  test('an editor that fails pushes nothing and keeps the draft', async () => {
    const failed = await edit('false', '--yes');
    assert.equal(failed.code, 1, describeResult(failed));
    assert.match(failed.stderr, /the editor "false" failed; nothing was pushed; the draft is kept in /);
    assert.ok(existsSync(keptFile(failed.stderr)));
    assert.equal(await version(), 4);
  });
});
