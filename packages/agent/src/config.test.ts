import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '@muster/host';
import { agentConfigFrom, DEFAULT_RENEW_FRACTION } from './config.js';

test('the renewal fraction defaults to 0.67 and takes any number strictly between 0 and 1', () => {
  assert.equal(agentConfigFrom({}, undefined).renewFraction, DEFAULT_RENEW_FRACTION);
  assert.equal(DEFAULT_RENEW_FRACTION, 0.67);
  for (const [text, value] of [
    ['0.5', 0.5],
    ['.9', 0.9],
    ['0.001', 0.001],
    ['0.999', 0.999],
  ] as const) {
    assert.equal(agentConfigFrom({ 'renew-fraction': text }, undefined).renewFraction, value);
  }
});

test('a renewal fraction of 0, 1, -1, abc or anything else outside (0, 1) is refused with a clear message', () => {
  for (const text of ['0', '1', '-1', 'abc', '', '1.5', '0.5e0', 'NaN', 'Infinity', '0x1', ' ']) {
    assert.throws(
      () => agentConfigFrom({ 'renew-fraction': text }, undefined),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.length === 1 &&
        err.problems[0] ===
          `--renew-fraction: "${text}" must be a number strictly between 0 and 1, such as 0.67 (renew after two thirds of the lifetime)`,
      text,
    );
  }
});

test('--rekey is off unless asked for', () => {
  assert.equal(agentConfigFrom({}, undefined).rekey, false);
  assert.equal(agentConfigFrom({ rekey: true }, undefined).rekey, true);
});

test('--server is repeatable: every URL kept in order, the first also the enrollment server; duplicates once', () => {
  const config = agentConfigFrom(
    { server: ['https://a.test:8443', 'https://b.test:8443/', 'https://a.test:8443'] },
    undefined,
  );
  assert.equal(config.server?.origin, 'https://a.test:8443');
  assert.deepEqual(
    config.servers?.map((u) => u.origin),
    ['https://a.test:8443', 'https://b.test:8443'],
  );
});

test('a --server that is not an https:// URL is refused, each one named', () => {
  assert.throws(
    () => agentConfigFrom({ server: ['https://a.test:8443', 'http://b.test:8443', 'nope'] }, undefined),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.problems.join('\n') ===
        '--server: "http://b.test:8443" must be an https:// URL\n--server: "nope" is not a URL',
  );
});
