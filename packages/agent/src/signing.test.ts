import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '@muster/host';
import { agentConfigFrom } from './config.js';

function problemsOf(raw: Record<string, unknown>, cwd?: string): string[] {
  try {
    agentConfigFrom(raw as never, undefined, cwd);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('--signed-requests and --proxy-ca', () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-signing-'));
  writeFileSync(join(dir, 'proxy-ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  writeFileSync(join(dir, 'not-a-cert.txt'), 'hello');
  test('the proxy CA is read from its file, relative to the working directory', () => {
    const config = agentConfigFrom(
      { 'signed-requests': true, 'proxy-ca': 'proxy-ca.pem' } as never,
      undefined,
      dir,
    );
    assert.equal(config.signedRequests, true);
    assert.match(config.proxyCa ?? '', /BEGIN CERTIFICATE/);
  });
  test('--proxy-ca without --signed-requests, a missing or non-PEM file, and --request are refused', () => {
    assert.deepEqual(problemsOf({ 'proxy-ca': 'proxy-ca.pem' }, dir), [
      '--proxy-ca is only used with --signed-requests (without it the agent trusts the fleet CA alone)',
    ]);
    assert.deepEqual(problemsOf({ 'signed-requests': true, 'proxy-ca': 'missing.pem' }, dir), [
      '--proxy-ca: cannot read missing.pem (ENOENT)',
    ]);
    assert.deepEqual(problemsOf({ 'signed-requests': true, 'proxy-ca': 'not-a-cert.txt' }, dir), [
      '--proxy-ca: not-a-cert.txt holds no PEM certificate',
    ]);
    assert.deepEqual(problemsOf({ 'signed-requests': true, request: true }, dir), [
      '--signed-requests works with a join token (--token-file) or a --grant, not with --request, whose first contact is pinned at the TLS layer',
    ]);
  });
});
