import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '@muster/host';
import { TokenCreateRequest } from '@muster/proto';
import { durationSeconds, flagProblem } from './flags.js';

describe('flagProblem', () => {
  test("says the server's words about a body field in terms of the verb's flag, in its units", () => {
    const flags = ['ttl', 'uses', 'profile', 'url'];
    assert.equal(flagProblem('body.ttlSec must be <= 2592000', flags), '--ttl: at most 30 d');
    assert.equal(flagProblem('body.ttlSec must be >= 1', flags), '--ttl: at least 1 s');
    assert.equal(flagProblem('body.uses must be <= 1000000', flags), '--uses: at most 1000000');
    assert.equal(
      flagProblem('body.profile must match pattern "^[a-z]+$"', flags),
      '--profile: must match pattern "^[a-z]+$"',
    );
  });

  test('leaves alone what no flag of the verb set, and what is not about a body field', () => {
    assert.equal(flagProblem('body.timeoutSec must be <= 3600', ['ttl']), undefined);
    assert.equal(flagProblem('body.constructor must be string', ['constructor']), undefined);
    assert.equal(flagProblem('querystring.limit must be <= 500', ['limit']), undefined);
    assert.equal(flagProblem('no such node', ['name']), undefined);
  });
});

describe('durationSeconds', () => {
  const limits = TokenCreateRequest.properties.ttlSec;

  test('reads a duration as whole seconds within the schema limits', () => {
    assert.equal(durationSeconds({ ttl: '2h' }, 'ttl', limits), 7200);
    assert.equal(durationSeconds({ ttl: '30d' }, 'ttl', limits), 2_592_000);
    assert.equal(durationSeconds({}, 'ttl', limits), undefined);
  });

  test('refuses a bad or out-of-range value as a usage error naming the flag', () => {
    for (const [value, message] of [
      ['60d', '--ttl: at most 30 d'],
      ['100ms', '--ttl: at least 1 s'],
      ['soon', '--ttl: "soon" is not a duration such as 30m, 2h or 7d'],
    ] as const) {
      assert.throws(
        () => durationSeconds({ ttl: value }, 'ttl', limits),
        (err: unknown) => err instanceof UsageError && err.message === message,
        value,
      );
    }
  });
});
