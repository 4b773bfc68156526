import assert from 'node:assert/strict';
import { chmodSync, chownSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertNoStackTrace, type CliResult, describeResult, Sandbox } from '../support/sandbox.js';

// Another local user who can write to the data dir, or to a trust file in it, could swap
// root.pub or ca.pem and have every join line carry their pins. The server refuses to start on
// such a host, in one sentence that names the file and the command that fixes it.
describe('a server refuses a data dir another local user could change', () => {
  const sandbox = new Sandbox();
  let dataDir: string;
  before(async () => {
    const first = await sandbox.startServer();
    dataDir = first.dataDir;
    assert.deepEqual(await first.process.stop('SIGTERM'), { code: 0, signal: null });
  });
  after(() => sandbox.cleanup());

  const startAgain = (args: string[] = []) =>
    sandbox.run([
      'server',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      ...args,
    ]);
  /** Exit 1 and one sentence on stderr that names the file and carries the fix. */
  const assertRefused = (result: CliResult, file: string, fix: string) => {
    assert.equal(result.code, 1, describeResult(result));
    assert.equal(result.stderr.trim().split('\n').length, 1, `not one line:\n${result.stderr}`);
    assert.ok(result.stderr.startsWith('muster server: '), result.stderr);
    assert.ok(result.stderr.includes(file), `the message does not name ${file}:\n${result.stderr}`);
    assert.ok(result.stderr.includes(fix), `no "${fix}" in:\n${result.stderr}`);
    assert.doesNotMatch(result.stdout, /is running/);
    assertNoStackTrace(result.stderr);
  };
  /** Runs one refusal with `path` changed by `spoil`, then puts the mode back. */
  const refusedWith = async (path: string, spoil: () => void, fix: string, args: string[] = []) => {
    const mode = statSync(path).mode & 0o777;
    spoil();
    try {
      assertRefused(await startAgain(args), path, fix);
    } finally {
      chmodSync(path, mode);
      chownSync(path, process.getuid!(), process.getgid!());
    }
  };

  test('a world-writable data dir', async () => {
    await refusedWith(dataDir, () => chmodSync(dataDir, 0o777), `chmod go-w ${dataDir}`);
  });

  test('a group-writable data dir', async () => {
    await refusedWith(dataDir, () => chmodSync(dataDir, 0o770), `chmod go-w ${dataDir}`);
  });

  for (const name of ['root.pub', 'ca.pem', 'server.pem', 'muster.db']) {
    test(`${name}, writable by others`, async () => {
      const file = join(dataDir, name);
      await refusedWith(file, () => chmodSync(file, 0o666), `chmod go-w ${file}`);
    });
  }

  for (const name of ['ledger.key', 'ca.key', 'admin.token']) {
    test(`${name}, writable by its group (a secret: so it must not be readable either)`, async () => {
      const file = join(dataDir, name);
      await refusedWith(file, () => chmodSync(file, 0o620), `chmod 600 ${file}`);
    });
  }

  test('a root.pub owned by another user, even at mode 0644', async () => {
    const file = join(dataDir, 'root.pub');
    await refusedWith(file, () => chownSync(file, 12345, 12345), `chown ${process.getuid!()} ${file}`);
  });

  test('a data dir owned by another user', async () => {
    await refusedWith(
      dataDir,
      () => chownSync(dataDir, 12345, 12345),
      `chown ${process.getuid!()} ${dataDir}`,
    );
  });

  test('trust files named by flag are held to the same rules: --fleet-root FILE, --admin-token-file', async () => {
    const outside = sandbox.tempDir('outside');
    const rootFile = join(outside, 'root.pub');
    writeFileSync(rootFile, readFileSync(join(dataDir, 'root.pub')), { mode: 0o644 });
    await refusedWith(rootFile, () => chmodSync(rootFile, 0o666), `chmod go-w ${rootFile}`, [
      '--fleet-root',
      rootFile,
    ]);
    const tokenFile = join(outside, 'admin.token');
    writeFileSync(tokenFile, readFileSync(join(dataDir, 'admin.token')), { mode: 0o600 });
    await refusedWith(
      tokenFile,
      () => chownSync(tokenFile, 12345, 12345),
      `chown ${process.getuid!()} ${tokenFile}`,
      ['--admin-token-file', tokenFile],
    );
  });

  test('an admin token file with a one-character token, and the data dir one too', async () => {
    const tokenFile = join(sandbox.tempDir('token'), 'admin.token');
    writeFileSync(tokenFile, 'x\n', { mode: 0o600 });
    const given = await startAgain(['--admin-token-file', tokenFile]);
    assertRefused(given, tokenFile, 'openssl rand -base64 32');
    assert.match(
      given.stderr,
      /too weak \(a 1-character .* about 5 bits of entropy, and at least 128 are needed\)/,
    );

    const own = join(dataDir, 'admin.token');
    writeFileSync(own, 'hunter2\n');
    assertRefused(await startAgain(), own, `remove ${own}`);
  });

  test('after the fix it names, the same data dir starts with a strong token', async () => {
    rmSync(join(dataDir, 'admin.token'));
    const server = await sandbox.startServer({ dataDir });
    assert.match(server.process.stdout, /created .*admin\.token/);
    assert.deepEqual(await server.process.stop('SIGTERM'), { code: 0, signal: null });
  });
});
