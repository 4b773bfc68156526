import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import type { Command, Policy } from './commands.js';
import { CommandRefused, checkApprovals, policyProblems } from './policy.js';
import { formatPublicKey, signCommand } from './signatures.js';

const alice = generateKeyPairSync('ed25519');
const bob = generateKeyPairSync('ed25519');
const op = (name: string, key: typeof alice, profiles = ['*']) => ({
  name,
  publicKey: formatPublicKey(key.publicKey),
  profiles,
});

function policy(approvals: number | undefined, operators = [op('alice', alice), op('bob', bob)]): Policy {
  return {
    version: 1,
    operators,
    profiles: {
      web: {
        actions: {
          restart: { argv: ['true'], timeoutSec: 5, maxOutputBytes: 0, ...(approvals ? { approvals } : {}) },
        },
      },
    },
  };
}

const command: Command = {
  v: 1,
  id: 'cmd-approvals-1',
  nonce: 'nonce-nonce-nonce-1',
  issuedAt: '2026-01-01T00:00:00Z',
  expiresAt: '2026-01-01T00:01:00Z',
  operator: 'alice',
  target: { all: true },
  action: 'restart',
  args: {},
};
const by = (name: string, key: typeof alice) => ({
  operator: name,
  signature: signCommand(command, key.privateKey),
});

test('a policy asking more approvals than operators could give is unusable; one needs no operator at all', () => {
  assert.deepEqual(policyProblems(policy(undefined, [])), []);
  assert.deepEqual(policyProblems(policy(2)), []);
  // The same key under two names is one operator.
  assert.deepEqual(policyProblems(policy(2, [op('alice', alice), op('alias', alice)])), [
    'action restart of profile web needs 2 approvals, but only 1 distinct operator key(s) may run commands on profile web',
  ]);
});

test('approvals are counted by distinct key, each valid, by an operator allowed on the profile', () => {
  const p = policy(2, [op('alice', alice), op('alias', alice), op('bob', bob), op('dbonly', bob, ['db'])]);
  checkApprovals(p, command, [by('alice', alice), by('bob', bob)], 'web');
  checkApprovals(policy(undefined), command, [by('alice', alice)], 'web');
  for (const [signatures, why] of [
    [[by('alice', alice)], /1 valid \(alice\)$/],
    [[by('alice', alice), by('alice', alice)], /operator alice's key has signed already/],
    [[by('alice', alice), by('alias', alice)], /operator alias's key has signed already/],
    [[by('alice', alice), by('dbonly', bob)], /operator dbonly may not run commands on profile web/],
    [
      [by('alice', alice), { operator: 'bob', signature: by('alice', alice).signature }],
      /operator bob does not verify/,
    ],
  ] as const)
    assert.throws(
      () => checkApprovals(p, command, signatures, 'web'),
      (err) => err instanceof CommandRefused && err.code === 'approvals' && why.test(err.message),
    );
});
