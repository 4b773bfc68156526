import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { NodeView } from '@muster/proto';
import { reportedAfter, waitForNode } from '../support/fleet.js';
import { cleanEnv, MUSTER_CLI } from '../support/processes.js';
import { describeResult, Sandbox } from '../support/sandbox.js';

/** A port nothing listens on now, so the server's join lines carry the port it really binds. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Every process's argv on this machine, as `ps` shows them to any local user. */
function everyArgv(): string[] {
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      } catch {
        return '';
      }
    });
}

// The line `muster token create` prints, pasted into a shell on the host as an operator would:
// it enrolls, and the join token never shows in any process's argv.
describe('the printed join line', () => {
  const sandbox = new Sandbox();
  let shell: ChildProcess | undefined;
  after(async () => {
    if (shell?.pid) process.kill(-shell.pid, 'SIGKILL');
    await sandbox.cleanup();
  });

  test('run by a real shell it enrolls the host, and the token is in no argv while the agent runs', async () => {
    const server = await sandbox.startServer({ listen: `127.0.0.1:${await freePort()}` });
    const created = await sandbox.run(['token', 'create', '--name', 'pasted', ...server.adminFlags]);
    assert.equal(created.code, 0, describeResult(created));
    const line = /^ {2}(printf .*)$/m.exec(created.stdout)?.[1];
    assert.ok(line, `no join line printed:\n${created.stdout}`);
    const secret = /'(mjt_[A-Za-z0-9_-]+)'/.exec(line)?.[1];
    assert.ok(secret);

    // `muster` on PATH, as the README's install section puts it there.
    const bin = sandbox.tempDir('bin');
    writeFileSync(join(bin, 'muster'), `#!/bin/sh\nexec "${process.execPath}" "${MUSTER_CLI}" "$@"\n`);
    chmodSync(join(bin, 'muster'), 0o755);
    const host = sandbox.tempDir('host');
    let output = '';
    // Typed into the shell, not given as `sh -c LINE`, whose own argv would hold the line.
    shell = spawn('/bin/sh', [], {
      cwd: host,
      env: cleanEnv({ PATH: `${bin}:${process.env.PATH}` }),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // its own process group, so the whole pipeline can be stopped
    });
    shell.stdin!.end(`${line}\n`);
    shell.stdout!.on('data', (chunk) => (output += chunk));
    shell.stderr!.on('data', (chunk) => (output += chunk));

    const node = await waitForNode(sandbox, server, 'pasted', 'reports', reportedAfter(null)).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- the pasted line wrote ---\n${output}`);
    });
    assert.equal(node.name, 'pasted');
    const seen = everyArgv().filter((argv) => argv.includes(secret));
    assert.deepEqual(seen, [], 'the join token is readable in ps');
    assert.ok(
      everyArgv().some((argv) => argv.includes('agent --server') && argv.includes('--token-file -')),
      'the agent runs from the pasted line',
    );
    const nodes = await sandbox.json<NodeView[]>(['nodes', 'ls', ...server.adminFlags]);
    assert.deepEqual(
      nodes.map((n) => n.name),
      ['pasted'],
    );
    process.kill(-shell.pid!, 'SIGTERM');
    await new Promise((resolve) => shell!.once('close', resolve));
    shell = undefined;
  });
});
