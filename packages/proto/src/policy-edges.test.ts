import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type Command, MAX_COMMAND_LIFETIME_MS, type Policy } from './commands.js';
import { authorize, CommandRefused, checkTiming, isTargeted, policyProblems } from './policy.js';

// Edges of the checks every agent runs before it runs anything (policy.test.ts has the main
// cases): what an operator would see refused, and what must never reach an argv.

const KEY = 'ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
const policy: Policy = {
  version: 3,
  operators: [
    { name: 'alice', publicKey: KEY, profiles: ['web'] },
    { name: 'carol', publicKey: KEY, profiles: ['*'] },
    { name: 'dave', publicKey: KEY, profiles: [] },
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
        pick: {
          argv: ['pick', '{name}'],
          args: { name: { pattern: 'nginx|apache' } },
          timeoutSec: 5,
          maxOutputBytes: 10,
        },
        free: {
          argv: ['printf', '%s', '{text}'],
          args: { text: { pattern: '.*' } },
          timeoutSec: 5,
          maxOutputBytes: 10,
        },
        pair: {
          argv: ['echo', '{a}-{b}'],
          args: { a: { pattern: '.*' }, b: { pattern: '.*', maxLength: 3 } },
          timeoutSec: 5,
          maxOutputBytes: 10,
        },
        'shell-free': {
          argv: ['echo', '{text}'],
          args: { text: { pattern: '.*' } },
          shell: true,
          timeoutSec: 5,
          maxOutputBytes: 10,
        },
        // `constructor` is a valid argument name (lowercase) that Object.prototype also has.
        proto: {
          argv: ['echo', '{constructor}'],
          args: { constructor: { pattern: '.*' } },
          timeoutSec: 5,
          maxOutputBytes: 10,
        },
        uptime: { argv: ['uptime'], timeoutSec: 5, maxOutputBytes: 10 },
      },
    },
    db: { actions: { uptime: { argv: ['uptime'], timeoutSec: 5, maxOutputBytes: 10 } } },
  },
};

const at = Date.UTC(2026, 10, 22, 12);
function cmd(overrides: Partial<Command> = {}): Command {
  return {
    v: 1,
    id: 'cmd-00000002',
    nonce: 'nonce-nonce-nonce-2',
    issuedAt: new Date(at).toISOString(),
    expiresAt: new Date(at + 60_000).toISOString(),
    operator: 'alice',
    target: { all: true },
    action: 'restart',
    args: { unit: 'nginx' },
    ...overrides,
  };
}

/** Arguments as they arrive on the wire: JSON.parse makes `__proto__` an own key, as an attacker would send it. */
const wireArgs = (json: string): Record<string, string> => JSON.parse(json) as Record<string, string>;

function refused(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CommandRefused, `expected a CommandRefused, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('authorize: who may run what', () => {
  test('an operator with * runs on any profile; one with no profiles runs nowhere', () => {
    assert.deepEqual(authorize(policy, cmd({ operator: 'carol', action: 'uptime', args: {} }), 'db'), [
      'uptime',
    ]);
    refused(
      () => authorize(policy, cmd({ operator: 'dave', action: 'uptime', args: {} }), 'web'),
      'operator',
      /dave may not run commands on profile web/,
    );
    refused(
      () => authorize(policy, cmd({ action: 'uptime', args: {} }), 'db'),
      'operator',
      /alice may not run commands on profile db/,
    );
  });

  test('an action of another profile, or an unknown one, is refused with its name', () => {
    refused(
      () => authorize(policy, cmd({ operator: 'carol', action: 'restart' }), 'db'),
      'action',
      /action restart is not allowed on profile db/,
    );
    refused(
      () => authorize(policy, cmd({ action: 'reboot', args: {} }), 'web'),
      'action',
      /action reboot is not allowed/,
    );
  });

  test('Object.prototype names are neither actions, profiles nor arguments', () => {
    for (const name of ['constructor', '__proto__', 'hasOwnProperty', 'toString', 'valueOf']) {
      refused(
        () => authorize(policy, cmd({ operator: 'carol', action: name, args: {} }), 'web'),
        'action',
        /is not allowed on profile web/,
      );
      refused(
        () => authorize(policy, cmd({ operator: 'carol', action: 'uptime', args: {} }), name),
        'action',
        /is not allowed on profile/,
      );
    }
    refused(
      () => authorize(policy, cmd({ args: wireArgs('{"unit":"nginx","__proto__":"x"}') }), 'web'),
      'argument',
      /__proto__ is not an argument of action restart/,
    );
    refused(
      () => authorize(policy, cmd({ action: 'uptime', args: wireArgs('{"constructor":"x"}') }), 'web'),
      'argument',
      /constructor is not an argument of action uptime/,
    );
  });

  test('a declared argument called constructor that the command leaves out is missing, not Object', () => {
    assert.deepEqual(authorize(policy, cmd({ action: 'proto', args: { constructor: 'hi' } }), 'web'), [
      'echo',
      'hi',
    ]);
    // The command carries no `constructor`: reading args.constructor must not find Object.prototype's.
    let outcome: unknown;
    try {
      outcome = authorize(policy, cmd({ action: 'proto', args: {} }), 'web');
    } catch (err) {
      outcome = err;
    }
    assert.ok(
      outcome instanceof CommandRefused && /argument constructor is missing/.test(outcome.message),
      `a command without the argument was accepted; the node would run ${JSON.stringify(outcome)}`,
    );
  });

  test('missing and extra arguments are refused by name', () => {
    refused(
      () => authorize(policy, cmd({ action: 'pair', args: { a: 'x' } }), 'web'),
      'argument',
      /argument b is missing/,
    );
    refused(
      () => authorize(policy, cmd({ action: 'uptime', args: { verbose: 'yes' } }), 'web'),
      'argument',
      /verbose is not an argument of action uptime/,
    );
  });
});

describe('authorize: argument constraints', () => {
  test('a pattern must match the whole value, alternations included', () => {
    for (const unit of ['abc;rm', 'abc rm', 'abc\n', ';rm', 'abc$(id)', 'ABC', ''])
      refused(
        () => authorize(policy, cmd({ args: { unit } }), 'web'),
        'argument',
        /does not match|control character/,
      );
    for (const name of ['nginx;reboot', 'xnginx', 'nginxapache', 'apache ', 'nginx|apache'])
      refused(
        () => authorize(policy, cmd({ action: 'pick', args: { name } }), 'web'),
        'argument',
        /does not match \[?nginx\|apache/,
      );
    assert.deepEqual(authorize(policy, cmd({ action: 'pick', args: { name: 'apache' } }), 'web'), [
      'pick',
      'apache',
    ]);
  });

  test('a ".." path segment is refused wherever it sits, with either slash', () => {
    const free = (text: string) => cmd({ action: 'free', args: { text } });
    for (const text of ['..', '../etc', 'a/..', 'a/../b', '..\\', 'a\\..\\b', 'C:\\..', '/..'])
      refused(() => authorize(policy, free(text), 'web'), 'argument', /"\.\." path segment/);
    for (const text of ['...', 'a..', '..a', 'a/...b', 'v1..v2'])
      assert.deepEqual(authorize(policy, free(text), 'web'), ['printf', '%s', text]);
  });

  test('control characters are refused, even where the pattern would allow them', () => {
    const free = (text: string) => cmd({ action: 'free', args: { text } });
    for (const ch of ['\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f'])
      refused(() => authorize(policy, free(`a${ch}b`), 'web'), 'argument', /control character/);
  });

  test('shell metacharacters are refused only when the action runs in a shell', () => {
    const nasty = ['$(id)', '`id`', 'a;b', 'a|b', 'a&b', 'a b', 'a>b', "it's", 'a"b', '*', '~', 'a\\b', '#x'];
    for (const text of nasty) {
      refused(
        () => authorize(policy, cmd({ action: 'shell-free', args: { text } }), 'web'),
        'argument',
        /shell metacharacters and action shell-free runs in a shell/,
      );
      // Without a shell the same value is one literal argv element.
      assert.deepEqual(authorize(policy, cmd({ action: 'free', args: { text } }), 'web'), [
        'printf',
        '%s',
        text,
      ]);
    }
    assert.deepEqual(authorize(policy, cmd({ action: 'shell-free', args: { text: 'hello' } }), 'web'), [
      '/bin/sh',
      '-c',
      'echo hello',
    ]);
  });

  test('length: 256 characters by default, or the maxLength the policy sets', () => {
    const free = (text: string) => cmd({ action: 'free', args: { text } });
    assert.doesNotThrow(() => authorize(policy, free('x'.repeat(256)), 'web'));
    refused(
      () => authorize(policy, free('x'.repeat(257)), 'web'),
      'argument',
      /text is too long \(257 characters, at most 256\)/,
    );
    assert.deepEqual(authorize(policy, cmd({ action: 'pair', args: { a: 'x', b: 'abc' } }), 'web'), [
      'echo',
      'x-abc',
    ]);
    refused(
      () => authorize(policy, cmd({ action: 'pair', args: { a: 'x', b: 'abcd' } }), 'web'),
      'argument',
      /b is too long \(4 characters, at most 3\)/,
    );
  });

  test('argument values are put in place literally: no second substitution, no $& patterns', () => {
    assert.deepEqual(authorize(policy, cmd({ action: 'pair', args: { a: '{b}$&$1', b: 'z' } }), 'web'), [
      'echo',
      '{b}$&$1-z',
    ]);
  });

  test('property: whatever an accepted [a-z]+ argument is, it is one argv element of lowercase letters', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (unit) => {
        let argv: string[];
        try {
          argv = authorize(policy, cmd({ args: { unit } }), 'web');
        } catch (err) {
          return err instanceof CommandRefused;
        }
        return argv.length === 3 && /^[a-z]+$/.test(argv[2]!) && argv[2] === unit;
      }),
      { numRuns: 500 },
    );
  });
});

describe('checkTiming at its edges', () => {
  const skew = 300_000;
  const refusedAt = (c: Command, now: number, code: string, pattern: RegExp) =>
    refused(() => checkTiming(c, now, skew), code, pattern);

  test('a command is valid up to, not at, its expiry', () => {
    assert.doesNotThrow(() => checkTiming(cmd(), at + 59_999, skew));
    refusedAt(cmd(), at + 60_000, 'expired', /expired/);
    refusedAt(cmd(), at + 3_600_000, 'expired', /expired 59 min ago|expired/);
  });

  test('issued up to the skew allowance in the future is fine; a millisecond more is refused', () => {
    assert.doesNotThrow(() => checkTiming(cmd(), at - skew, skew));
    refusedAt(cmd(), at - skew - 1, 'not_yet_valid', /in the future, more than the clock skew allowance/);
  });

  test('expiring at or before issuance, or living longer than 24 h, is refused', () => {
    refusedAt(cmd({ expiresAt: new Date(at).toISOString() }), at - 1000, 'timing', /expires before/);
    const lifetime = (ms: number) => cmd({ expiresAt: new Date(at + ms).toISOString() });
    assert.doesNotThrow(() => checkTiming(lifetime(MAX_COMMAND_LIFETIME_MS), at, skew));
    refusedAt(lifetime(MAX_COMMAND_LIFETIME_MS + 1), at, 'timing', /may live 24 h at most/);
  });

  test('an unreadable time is refused, not read as now', () => {
    refusedAt(cmd({ issuedAt: 'yesterday' }), at, 'timing', /unreadable time/);
    refusedAt(cmd({ expiresAt: '' }), at, 'timing', /unreadable time/);
  });
});

describe('isTargeted', () => {
  const node = { id: 'n-7', name: 'web-7', profile: 'web', labels: { env: 'prod', tier: 'front' } };
  const bare = { id: 'n-8', name: 'db-8', profile: 'db', labels: {} };

  test('names and ids match exactly, never as prefixes', () => {
    assert.ok(isTargeted({ nodes: ['db-1', 'web-7'] }, node));
    assert.ok(isTargeted({ nodes: ['n-7'] }, node));
    assert.ok(!isTargeted({ nodes: ['web-'] }, node));
    assert.ok(!isTargeted({ nodes: ['WEB-7'] }, node));
    assert.ok(!isTargeted({ nodes: ['n-77'] }, node));
  });

  test('labels: every wanted pair must match; inherited properties are not labels', () => {
    assert.ok(isTargeted({ labels: { env: 'prod', tier: 'front' } }, node));
    assert.ok(!isTargeted({ labels: { env: 'staging' } }, node));
    assert.ok(!isTargeted({ labels: { env: 'prod', zone: 'a' } }, node));
    assert.ok(!isTargeted({ labels: { env: 'prod' } }, bare));
    assert.ok(!isTargeted({ labels: { toString: 'x', constructor: 'y' } }, bare));
    assert.ok(!isTargeted({ labels: wireArgs('{"__proto__":"x"}') }, bare));
  });

  test('an empty label selector targets nobody, not everybody', () => {
    assert.ok(!isTargeted({ labels: {} }, node));
    assert.ok(!isTargeted({ labels: {} }, bare));
  });

  test('profile and all', () => {
    assert.ok(isTargeted({ profile: 'web' }, node));
    assert.ok(!isTargeted({ profile: 'db' }, node));
    assert.ok(isTargeted({ all: true }, bare));
    assert.ok(!isTargeted({ all: false } as unknown as { all: true }, bare));
  });
});

describe('policyProblems', () => {
  test('a pattern the agents could not compile (they use the u flag) is a problem, named', () => {
    const broken = structuredClone(policy);
    broken.profiles.web!.actions.restart!.args!.unit!.pattern = 'a\\-b';
    assert.deepEqual(policyProblems(broken), [
      'action restart of profile web: the pattern of argument unit is not a regular expression',
    ]);
  });

  test('a placeholder with no declared argument is a problem; a declared argument left unused is not', () => {
    const broken = structuredClone(policy);
    broken.profiles.db!.actions.uptime!.argv.push('{since}');
    broken.profiles.web!.actions.uptime!.args = { spare: { pattern: '.*' } };
    assert.deepEqual(policyProblems(broken), [
      'action uptime of profile db: {since} in argv is not a declared argument',
    ]);
  });

  test('a {constructor} placeholder is undeclared even though Object.prototype has one', () => {
    const broken = structuredClone(policy);
    broken.profiles.db!.actions.uptime = {
      argv: ['echo', '{constructor}'],
      args: {},
      timeoutSec: 5,
      maxOutputBytes: 10,
    };
    assert.deepEqual(policyProblems(broken), [
      'action uptime of profile db: {constructor} in argv is not a declared argument',
    ]);
  });

  test('an operator listed twice is a problem', () => {
    const twice = structuredClone(policy);
    twice.operators.push({ name: 'alice', publicKey: KEY, profiles: ['db'] });
    assert.deepEqual(policyProblems(twice), ['operator alice is listed twice']);
  });
});
