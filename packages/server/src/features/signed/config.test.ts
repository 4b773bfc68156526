import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { serverConfigFrom } from '../../config.js';
import { ConfigError } from '../../errors.js';
import { TrustedProxies } from '../../http/trusted-proxies.js';

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    serverConfigFrom(raw as never);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('--proxied-listen and --trusted-proxy', () => {
  test('a bare port binds loopback; the trusted proxies are kept', () => {
    const config = serverConfigFrom({ 'proxied-listen': '8444', 'trusted-proxy': ['10.0.0.0/8', '::1'] });
    assert.deepEqual(config.proxiedListen, { host: '127.0.0.1', port: 8444 });
    assert.deepEqual(config.trustedProxies, ['10.0.0.0/8', '::1']);
  });
  test('--proxied-listen without --trusted-proxy is refused: it would answer nobody', () => {
    assert.deepEqual(problemsOf({ 'proxied-listen': '127.0.0.1:8444' }), [
      '--proxied-listen needs at least one --trusted-proxy ADDR (the address of the TLS proxy that forwards to it)',
    ]);
  });
  test('--trusted-proxy alone, a bad block and a bad address are each named', () => {
    assert.deepEqual(problemsOf({ 'trusted-proxy': ['10.0.0.0/8'] }), [
      '--trusted-proxy is only used with --proxied-listen, which it was given without',
    ]);
    assert.deepEqual(
      problemsOf({ 'proxied-listen': 'nope', 'trusted-proxy': ['10.0.0.0/33', 'proxy.lan'] }),
      [
        '--trusted-proxy: "10.0.0.0/33" is not an IP address or CIDR block (such as 10.0.0.0/8)',
        '--trusted-proxy: "proxy.lan" is not an IP address or CIDR block (such as 10.0.0.0/8)',
        '--proxied-listen: "nope" is not HOST:PORT (or a port on loopback)',
      ],
    );
  });
});

describe('trusted proxies', () => {
  const proxies = new TrustedProxies(['10.1.0.0/16', '127.0.0.1', 'fd00::/8']);
  test('addresses in a block or named are trusted, IPv4-mapped IPv6 as IPv4; others are not', () => {
    for (const a of ['10.1.2.3', '127.0.0.1', '::ffff:127.0.0.1', 'fd00::5'])
      assert.equal(proxies.trusts(a), true, a);
    for (const a of ['10.2.0.1', '127.0.0.2', '::1', 'fe80::1', undefined, 'x'])
      assert.equal(proxies.trusts(a), false, String(a));
  });
  test('forwarded headers count only from a trusted peer', () => {
    const headers = { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' };
    assert.equal(proxies.clientAddress('127.0.0.1', headers), '203.0.113.7');
    assert.equal(proxies.clientAddress('192.0.2.1', headers), '192.0.2.1');
    assert.equal(
      proxies.clientAddress('127.0.0.1', { forwarded: 'for=192.0.2.60;proto=https' }),
      '192.0.2.60',
    );
    assert.equal(proxies.clientAddress('127.0.0.1', {}), '127.0.0.1');
  });
});
