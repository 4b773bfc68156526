import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type Policy, type PolicyState, policySignatureValid, type SignedPolicy } from '@muster/proto';
import { assertNoStackTrace, describeResult, Sandbox } from '../support/sandbox.js';

// The production path for the fleet root (issue 5): the root key is made on a machine that
// stays offline, the server only ever sees its public half, and policies are signed there and
// carried over as files.
describe('a fleet root kept offline: root init, policy sign, policy push', () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('the server relays policies the offline root signed, and refuses the rest with a reason', async () => {
    const offline = sandbox.tempDir('offline');
    const rootKey = join(offline, 'fleet-root.key');
    const made = await sandbox.json<{ publicKeyFile: string; publicKey: string; fingerprint: string }>([
      'root',
      'init',
      '--out',
      rootKey,
    ]);
    assert.equal(made.publicKeyFile, `${rootKey}.pub`);
    assert.equal(readFileSync(`${rootKey}.pub`, 'utf8').trim(), made.publicKey);
    assert.equal(statSync(rootKey).mode & 0o077, 0, 'the root private key is readable by its owner only');

    const server = await sandbox.startServer({ args: ['--fleet-root', `${rootKey}.pub`] });
    assert.ok(!existsSync(join(server.dataDir, 'root.key')), 'the server made no root key of its own');

    // Before any policy: show says so and how to make one.
    const empty = await sandbox.run(['policy', 'show', ...server.adminFlags]);
    assert.equal(empty.code, 0, describeResult(empty));
    assert.match(empty.stdout, new RegExp(`pin\\s+${made.fingerprint}`));
    assert.match(empty.stdout, /no policy pushed yet/);

    const operatorKey = join(sandbox.tempDir('operator'), 'alice.key');
    assert.equal((await sandbox.run(['operator', 'keygen', '--out', operatorKey])).code, 0);
    const alicePub = readFileSync(`${operatorKey}.pub`, 'utf8').trim();
    const policy: Policy = {
      version: 1,
      operators: [{ name: 'alice', publicKey: alicePub, profiles: ['web'] }],
      profiles: {
        web: {
          actions: {
            'restart-web': {
              argv: ['systemctl', 'restart', '{unit}'],
              args: { unit: { pattern: 'nginx|haproxy' } },
              timeoutSec: 30,
              maxOutputBytes: 4096,
            },
          },
        },
      },
    };
    const draft = join(offline, 'policy.json');
    writeFileSync(draft, `${JSON.stringify(policy, null, 2)}\n`);
    const signedFile = join(offline, 'policy.signed.json');
    const sign = await sandbox.run(['policy', 'sign', draft, '--key', rootKey, '--out', signedFile]);
    assert.equal(sign.code, 0, describeResult(sign));
    assert.match(sign.stderr, /signed policy version 1 written to/);
    const signed = JSON.parse(readFileSync(signedFile, 'utf8')) as SignedPolicy;
    assert.deepEqual(signed.policy, policy);
    assert.ok(policySignatureValid(signed.policy, signed.signature, made.publicKey), 'anyone can check it');

    // An unsigned draft is a usage mistake, with the command that fixes it.
    const unsigned = await sandbox.run(['policy', 'push', draft, ...server.adminFlags]);
    assert.equal(unsigned.code, 2, describeResult(unsigned));
    assert.match(unsigned.stderr, /is not signed; run: muster policy sign/);
    assertNoStackTrace(unsigned.stderr);

    const push = await sandbox.run(['policy', 'push', signedFile, ...server.adminFlags]);
    assert.equal(push.code, 0, describeResult(push));
    assert.match(push.stdout, /policy version 1 is in force/);

    const shown = await sandbox.run(['policy', 'show', ...server.adminFlags]);
    assert.equal(shown.code, 0, describeResult(shown));
    assert.match(shown.stdout, new RegExp(`fleet root\\s+${made.publicKey.replace(/[+/]/g, '\\$&')}`));
    assert.match(shown.stdout, /policy\s+version 1/);
    assert.match(shown.stdout, /alice\s+web\s+ed25519:/);
    assert.match(shown.stdout, /web\s+restart-web\s+systemctl restart \{unit\}\s+30s/);

    const state = await sandbox.json<PolicyState>(['policy', 'show', ...server.adminFlags]);
    assert.equal(state.rootKey, made.publicKey);
    assert.equal(state.rootFingerprint, made.fingerprint);
    assert.deepEqual(state.current, signed, 'the server relays the policy byte for byte as signed');

    // Signed by another root (the kind the embedded default makes): refused, the policy stays.
    const otherRoot = join(sandbox.tempDir('other-root'), 'other.key');
    assert.equal((await sandbox.run(['root', 'init', '--out', otherRoot])).code, 0);
    const v2 = join(offline, 'policy-v2.json');
    writeFileSync(v2, JSON.stringify({ ...policy, version: 2 }));
    const foreign = join(offline, 'policy-v2.foreign.json');
    assert.equal((await sandbox.run(['policy', 'sign', v2, '--key', otherRoot, '--out', foreign])).code, 0);
    const refused = await sandbox.run(['policy', 'push', foreign, ...server.adminFlags]);
    assert.equal(refused.code, 1, describeResult(refused));
    assert.match(refused.stderr, new RegExp(`not signed by the fleet root key ${made.fingerprint}`));
    assertNoStackTrace(refused.stderr);

    // The same version again (even newly signed) is not newer: refused, the policy stays.
    const again = join(offline, 'policy-v1.again.json');
    writeFileSync(again, JSON.stringify({ ...policy, operators: [] }));
    assert.equal((await sandbox.run(['policy', 'sign', again, '--key', rootKey, '--out', again])).code, 0);
    const stale = await sandbox.run(['policy', 'push', again, ...server.adminFlags]);
    assert.equal(stale.code, 1, describeResult(stale));
    assert.match(stale.stderr, /policy version 1 is not newer than version 1 in force/);
    assert.deepEqual(
      (await sandbox.json<PolicyState>(['policy', 'show', ...server.adminFlags])).current,
      signed,
    );
  });

  test('operator add refuses a key that is not one, before asking the server', async () => {
    const server = await sandbox.startServer();
    for (const key of [
      'ed25519:not-base64!',
      'ed25519:AAAA',
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5',
      '/no/such/file.pub',
    ]) {
      const add = await sandbox.run(['operator', 'add', 'bob', '--pubkey', key, ...server.adminFlags]);
      assert.equal(add.code, 2, `--pubkey ${key}: ${describeResult(add)}`);
      assert.match(add.stderr, /is not a public key \(ed25519:<base64 of 32 bytes>\) or a file holding one/);
      assertNoStackTrace(add.stderr);
    }
    const ls = await sandbox.json<{ items: unknown[] }>(['operator', 'ls', ...server.adminFlags]);
    assert.deepEqual(ls.items, [], 'no operator was registered');
  });
});
