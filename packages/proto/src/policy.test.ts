import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Command, Policy } from './commands.js';
import { authorize, CommandRefused, checkTiming, isTargeted, policyProblems } from './policy.js';
import {
  commandSignatureValid,
  formatPublicKey,
  policySignatureValid,
  signCommand,
  signPolicy,
} from './signatures.js';

const policy: Policy = {
  version: 1,
  operators: [
    { name: 'alice', publicKey: 'ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', profiles: ['web'] },
    { name: 'root', publicKey: 'ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', profiles: ['*'] },
  ],
  profiles: {
    web: {
      actions: {
        restart: {
          argv: ['systemctl', 'restart', '{unit}'],
          args: { unit: { pattern: '[a-z]+' } },
          timeoutSec: 5,
          maxOutputBytes: 10,
        },
        read: {
          argv: ['cat', '--', 'prefix={path}'],
          args: { path: { pattern: '.*', maxLength: 20 } },
          timeoutSec: 5,
          maxOutputBytes: 10,
        },
        say: {
          argv: ['echo', '{word}'],
          args: { word: { pattern: '.*' } },
          shell: true,
          timeoutSec: 5,
          maxOutputBytes: 10,
        },
      },
    },
  },
};

const at = Date.UTC(2026, 10, 22);
function cmd(overrides: Partial<Command> = {}): Command {
  return {
    v: 1,
    id: 'cmd-00000001',
    nonce: 'nonce-nonce-nonce-1',
    issuedAt: new Date(at).toISOString(),
    expiresAt: new Date(at + 60_000).toISOString(),
    operator: 'alice',
    target: { all: true },
    action: 'restart',
    args: { unit: 'nginx' },
    ...overrides,
  };
}

const refusal = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (err: unknown) => err instanceof CommandRefused && pattern.test(err.message));

describe('authorize', () => {
  test('an allowed action gives its argv with the arguments in place, never a shell unless asked', () => {
    assert.deepEqual(authorize(policy, cmd(), 'web'), ['systemctl', 'restart', 'nginx']);
    assert.deepEqual(authorize(policy, cmd({ action: 'read', args: { path: '/etc/hosts' } }), 'web'), [
      'cat',
      '--',
      'prefix=/etc/hosts',
    ]);
    assert.deepEqual(authorize(policy, cmd({ action: 'say', args: { word: 'hi' } }), 'web'), [
      '/bin/sh',
      '-c',
      'echo hi',
    ]);
    assert.deepEqual(authorize(policy, cmd({ operator: 'root' }), 'web'), ['systemctl', 'restart', 'nginx']);
  });

  test('operators, profiles and actions outside the policy are refused, prototype names included', () => {
    refusal(
      () => authorize(policy, cmd({ operator: 'mallory' }), 'web'),
      /operator mallory is not in the policy/,
    );
    refusal(() => authorize(policy, cmd(), 'db'), /alice may not run commands on profile db/);
    refusal(() => authorize(policy, cmd({ operator: 'root' }), 'db'), /not allowed on profile db/);
    for (const name of ['constructor', 'tostring', 'reboot'])
      refusal(() => authorize(policy, cmd({ action: name }), 'web'), /not allowed on profile web/);
    refusal(
      () => authorize(policy, cmd({ operator: 'root' }), 'constructor'),
      /not allowed on profile constructor/,
    );
  });

  test('arguments: full-match patterns, length, control characters, .. segments, shell metacharacters', () => {
    refusal(() => authorize(policy, cmd({ args: { unit: 'nginx;reboot' } }), 'web'), /does not match/);
    refusal(() => authorize(policy, cmd({ args: { unit: 'NGINX' } }), 'web'), /does not match/);
    refusal(() => authorize(policy, cmd({ args: {} }), 'web'), /argument unit is missing/);
    refusal(
      () => authorize(policy, cmd({ args: { unit: 'a', more: 'b' } }), 'web'),
      /more is not an argument/,
    );
    refusal(
      () => authorize(policy, cmd({ args: { unit: 'a', constructor: 'b' } }), 'web'),
      /constructor is not an argument/,
    );
    const read = (path: string) => cmd({ action: 'read', args: { path } });
    refusal(() => authorize(policy, read('a'.repeat(21)), 'web'), /too long \(21 characters, at most 20\)/);
    refusal(() => authorize(policy, read('/var/../etc'), 'web'), /"\.\." path segment/);
    refusal(() => authorize(policy, read('..\\windows'), 'web'), /"\.\." path segment/);
    refusal(() => authorize(policy, read('a\nb'), 'web'), /control character/);
    assert.deepEqual(authorize(policy, read('a..b'), 'web'), ['cat', '--', 'prefix=a..b']);
    refusal(
      () => authorize(policy, cmd({ action: 'say', args: { word: '$(id)' } }), 'web'),
      /shell metacharacters/,
    );
    refusal(
      () => authorize(policy, cmd({ action: 'say', args: { word: 'a b' } }), 'web'),
      /shell metacharacters/,
    );
  });
});

describe('checkTiming', () => {
  test('expired, too far in the future, backwards and overlong commands are refused', () => {
    assert.doesNotThrow(() => checkTiming(cmd(), at + 1000, 300_000));
    refusal(() => checkTiming(cmd(), at + 60_000, 300_000), /expired/);
    refusal(() => checkTiming(cmd(), at - 301_000, 300_000), /in the future/);
    assert.doesNotThrow(() => checkTiming(cmd(), at - 299_000, 300_000));
    refusal(
      () => checkTiming(cmd({ expiresAt: new Date(at - 1).toISOString() }), at - 10, 300_000),
      /expired|before/,
    );
    refusal(
      () => checkTiming(cmd({ expiresAt: new Date(at + 25 * 3_600_000).toISOString() }), at, 300_000),
      /may live 24 h at most|at most/,
    );
  });
});

describe('isTargeted', () => {
  const node = { id: 'n-1', name: 'web-1', profile: 'web', labels: { env: 'prod', role: 'front' } };
  test('by name or id, by labels (all of them), by profile, or all; an empty label set targets nobody', () => {
    assert.ok(isTargeted({ nodes: ['web-1'] }, node));
    assert.ok(isTargeted({ nodes: ['n-1'] }, node));
    assert.ok(!isTargeted({ nodes: ['web-2'] }, node));
    assert.ok(isTargeted({ labels: { env: 'prod' } }, node));
    assert.ok(!isTargeted({ labels: { env: 'prod', role: 'back' } }, node));
    assert.ok(!isTargeted({ labels: { constructor: 'x' } }, node));
    assert.ok(!isTargeted({ labels: {} }, node));
    assert.ok(isTargeted({ profile: 'web' }, node));
    assert.ok(isTargeted({ all: true }, node));
  });
});

describe('policyProblems', () => {
  test('names broken patterns, undeclared placeholders and operators listed twice', () => {
    assert.deepEqual(policyProblems(policy), []);
    const broken = structuredClone(policy);
    broken.profiles.web!.actions.restart!.args!.unit!.pattern = '([a-z';
    broken.profiles.web!.actions.read!.argv.push('{nope}');
    broken.operators.push(broken.operators[0]!);
    assert.equal(policyProblems(broken).length, 3);
  });
});

describe('signatures', () => {
  const op = generateKeyPairSync('ed25519');
  const key = formatPublicKey(op.publicKey);
  test('a command signature never verifies as a policy signature (the context line differs)', () => {
    const signature = signCommand(cmd(), op.privateKey);
    assert.ok(commandSignatureValid(cmd(), signature, key));
    assert.ok(!policySignatureValid(cmd() as unknown as Policy, signature, key));
    assert.ok(policySignatureValid(policy, signPolicy(policy, op.privateKey), key));
    // The same bytes in another base64 spelling are not the signature the operator made.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const last = alphabet.indexOf(signature[85]!);
    const respelled = `${signature.slice(0, 85)}${alphabet[last ^ 1]}==`;
    assert.deepEqual(Buffer.from(respelled, 'base64'), Buffer.from(signature, 'base64'));
    assert.ok(!commandSignatureValid(cmd(), respelled, key));
    assert.ok(
      !commandSignatureValid(cmd(), signature, formatPublicKey(generateKeyPairSync('ed25519').publicKey)),
    );
  });

  test('changing any field of a signed command breaks its signature', () => {
    const signature = signCommand(cmd(), op.privateKey);
    fc.assert(
      fc.property(
        fc.constantFrom<keyof Command>('id', 'nonce', 'issuedAt', 'expiresAt', 'operator', 'action'),
        fc.string({ minLength: 1, maxLength: 12 }),
        (field, suffix) =>
          !commandSignatureValid({ ...cmd(), [field]: `${cmd()[field]}${suffix}` }, signature, key),
      ),
    );
    assert.ok(!commandSignatureValid(cmd({ args: { unit: 'apache' } }), signature, key));
    assert.ok(!commandSignatureValid(cmd({ target: { nodes: ['web-1'] } }), signature, key));
  });
});
