import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertRefused, type BackupFixture, backupFixture, runLong } from '../support/backups.js';
import { describeResult, Sandbox } from '../support/sandbox.js';

/** The data dir's files other than the store (which a running server keeps changing). */
const keyFiles = (dir: string) => readdirSync(dir).filter((name) => !name.startsWith('muster.db'));

/** The files' SHA-256: what "nothing was written" is checked against. */
function contents(dir: string, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    names.map((n) => [
      n,
      createHash('sha256')
        .update(readFileSync(join(dir, n)))
        .digest('hex'),
    ]),
  );
}

// What an operator gets wrong with backup and restore, and what Muster answers: each refusal
// is an exit code and one sentence, and leaves the target exactly as it was.
describe('muster backup and restore refuse bad input and write nothing', () => {
  const sandbox = new Sandbox();
  let f: BackupFixture;
  before(async () => {
    f = await backupFixture(sandbox);
  });
  after(() => sandbox.cleanup());

  test('a truncated backup is refused', async () => {
    const cut = join(f.work, 'cut.age');
    const whole = readFileSync(f.backup);
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const target = join(f.parent, 'from-cut');
    assertRefused(
      await f.restore(cut, target),
      1,
      /^muster restore: cannot restore .+cut\.age: it is damaged: truncated or changed after it was written \(it fails authentication\); nothing was written$/,
    );
    f.assertNothingRestored(target);
  });

  test('a backup with one byte changed is refused', async () => {
    const changed = join(f.work, 'changed.age');
    const bytes = Buffer.from(readFileSync(f.backup));
    bytes[bytes.length - 100]! ^= 0x01;
    writeFileSync(changed, bytes);
    const target = join(f.parent, 'from-changed');
    assertRefused(
      await f.restore(changed, target),
      1,
      /^muster restore: cannot restore .+changed\.age: it is damaged: truncated or changed after it was written .+; nothing was written$/,
    );
    f.assertNothingRestored(target);
  });

  test('the wrong passphrase is refused', async () => {
    const wrong = join(f.work, 'wrong-pass');
    writeFileSync(wrong, 'tarmac-lantern-quiet-orbiT\n', { mode: 0o600 });
    const target = join(f.parent, 'wrong');
    const result = await runLong(sandbox, [
      'restore',
      f.backup,
      '--data-dir',
      target,
      '--passphrase-file',
      wrong,
    ]);
    assertRefused(
      result,
      1,
      /^muster restore: cannot restore .+fleet\.age: the passphrase does not open this backup \(wrong passphrase, or not a backup made with it\); nothing was written$/,
    );
    f.assertNothingRestored(target);
  });

  test('a passphrase file that is missing or empty is a usage error, for backup and restore', async () => {
    const empty = join(f.work, 'empty-pass');
    writeFileSync(empty, '\n', { mode: 0o600 });
    const missing = join(f.work, 'no-such-pass');
    const out = join(f.work, 'never.age');
    const target = join(f.parent, 'never');
    for (const [file, why] of [
      [missing, /^muster (backup|restore): --passphrase-file: cannot read .+no-such-pass \(ENOENT\)$/],
      [empty, /^muster (backup|restore): --passphrase-file: .+empty-pass is empty$/],
    ] as const) {
      const backedUp = await runLong(sandbox, [
        'backup',
        '--data-dir',
        f.server.dataDir,
        '--out',
        out,
        '--passphrase-file',
        file,
      ]);
      assertRefused(backedUp, 2, why);
      assert.equal(existsSync(out), false, 'no backup file was written');
      assertRefused(
        await runLong(sandbox, ['restore', f.backup, '--data-dir', target, '--passphrase-file', file]),
        2,
        why,
      );
      f.assertNothingRestored(target);
    }
    assertRefused(
      await runLong(sandbox, ['backup', '--data-dir', f.server.dataDir, '--out', out]),
      2,
      /^muster backup: --passphrase-file is required/,
    );
    assert.deepEqual(
      readdirSync(f.work).filter((n) => n.startsWith('.')),
      [],
      'no temporary files are left beside --out',
    );
  });

  test('a restore onto a data dir that is not empty needs --force', async () => {
    const holder = sandbox.tempDir('occupied');
    const target = join(holder, 'occupied');
    mkdirSync(target);
    writeFileSync(join(target, 'notes.txt'), 'mine\n');
    assertRefused(
      await f.restore(f.backup, target),
      1,
      /^muster restore: cannot restore .+: .+occupied is not empty; restore into a new or empty folder, or give --force to replace what it holds; nothing was written$/,
    );
    assert.deepEqual(readdirSync(target), ['notes.txt']);
    assert.deepEqual(readdirSync(holder), ['occupied']);
    // With --force it is replaced by the backup's data dir, whole.
    const forced = await f.restore(f.backup, target, '--force');
    assert.equal(forced.code, 0, describeResult(forced));
    assert.deepEqual(readdirSync(target).sort(), [...keyFiles(f.server.dataDir), 'muster.db'].sort());
    assert.equal(statSync(join(target, 'ca.key')).mode & 0o777, 0o600, 'keys keep their mode');
    assert.deepEqual(readdirSync(holder), ['occupied'], 'nothing but the target is left');
  });

  test("a restore onto a running server's data dir is refused, even with --force", async () => {
    const before = contents(f.server.dataDir, keyFiles(f.server.dataDir));
    const result = await f.restore(f.backup, f.server.dataDir, '--force');
    assertRefused(
      result,
      1,
      new RegExp(
        `^muster restore: cannot restore .+: .+muster\\.db(-wal|-shm)? is open in a running process \\(pid ${f.server.process.pid}: .*server.*\\); stop the server using .+ first; nothing was written$`,
      ),
    );
    assert.deepEqual(
      contents(f.server.dataDir, keyFiles(f.server.dataDir)),
      before,
      'the keys and certificates are untouched',
    );
    const nodes = await sandbox.run(['nodes', 'ls', ...f.server.adminFlags]);
    assert.equal(nodes.code, 0, 'the server still serves');
  });
});
