import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, UsageError } from '@muster/host';
import { agentConfigFrom } from './config.js';
import { assertCanRequest } from './request.js';

test('a host joins one way: a token, --request and --grant exclude each other', () => {
  for (const raw of [
    { token: 'mjt_x', request: true },
    { token: 'mjt_x', grant: 'g.json' },
    { request: true, grant: 'g.json' },
  ]) {
    assert.throws(
      () => agentConfigFrom(raw, undefined),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => /exclude each other: a host joins one way$/.test(p)),
      JSON.stringify(raw),
    );
  }
});

test('--request without --server or --ca-pin is a usage error naming what is missing', () => {
  assert.throws(
    () => assertCanRequest(agentConfigFrom({ request: true }, undefined)),
    (err: unknown) =>
      err instanceof UsageError && /^--request needs --server and --ca-pin:/.test(err.message),
  );
  assert.throws(
    () => assertCanRequest(agentConfigFrom({ request: true, server: ['https://a.example:8443'] }, undefined)),
    (err: unknown) => err instanceof UsageError && /^--request needs --ca-pin:/.test(err.message),
  );
});
