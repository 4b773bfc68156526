import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createServer, type Server } from 'node:tls';
import { issueCertificate, nameDer } from '@muster/host';
import { bypassesProxy, dialTls, proxyFor } from './dial.js';

/** A CA and a server certificate for `fleet.test` only, as a fleet CA issues one. */
function serverPki(): { ca: string; key: string; cert: string } {
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leafKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = (k: typeof caKeys) => k.publicKey.export({ type: 'spki', format: 'der' });
  const now = Date.now();
  const caName = nameDer([['CN', 'test fleet CA']]);
  const ca = issueCertificate(
    {
      serialHex: randomBytes(8).toString('hex'),
      issuer: caName,
      subject: caName,
      notBefore: now - 60_000,
      notAfter: now + 3_600_000,
      spki: spki(caKeys),
      ca: true,
    },
    caKeys.privateKey,
  );
  const cert = issueCertificate(
    {
      serialHex: randomBytes(8).toString('hex'),
      issuer: caName,
      subject: nameDer([['CN', 'fleet.test']]),
      notBefore: now - 60_000,
      notAfter: now + 3_600_000,
      spki: spki(leafKeys),
      ca: false,
      extKeyUsage: ['serverAuth'],
      subjectAltNames: [{ dns: 'fleet.test' }],
    },
    caKeys.privateKey,
  );
  return { ca, cert, key: leafKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

describe('dialTls: one name, several addresses', () => {
  const pki = serverPki();
  let server: Server;
  let port: number;
  const servernames: Array<string | false | null> = [];
  before(async () => {
    server = createServer({ key: pki.key, cert: pki.cert }, (socket) => {
      servernames.push(socket.servername);
      socket.end('hello');
    });
    // Bound to 127.0.0.1 only: 127.0.0.2 is loopback too, but refuses this port.
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('a dead address is skipped for the next one, and the certificate is checked on the name', async () => {
    const tried: string[] = [];
    const socket = await dialTls(
      { host: 'fleet.test', port },
      { ca: pki.ca },
      {
        env: {},
        resolve: async (host) => {
          tried.push(host);
          return ['127.0.0.2', '127.0.0.1'];
        },
      },
    );
    assert.equal(socket.authorized, true);
    assert.equal(socket.remoteAddress, '127.0.0.1');
    assert.equal(String(await new Promise((resolve) => socket.once('data', resolve))), 'hello');
    socket.destroy();
    assert.deepEqual(tried, ['fleet.test']);
    assert.equal(servernames.at(-1), 'fleet.test', 'SNI carries the name, not an address');
  });

  test('a name the certificate does not hold is refused, whatever address it resolves to', async () => {
    await assert.rejects(
      dialTls({ host: 'other.test', port }, { ca: pki.ca }, { env: {}, resolve: async () => ['127.0.0.1'] }),
      (err: NodeJS.ErrnoException) => err.code === 'ERR_TLS_CERT_ALTNAME_INVALID',
    );
  });

  test('when no address accepts, the error names each one', async () => {
    await assert.rejects(
      dialTls(
        { host: 'fleet.test', port },
        { ca: pki.ca },
        { env: {}, resolve: async () => ['127.0.0.2', '127.0.0.3'] },
      ),
      (err: NodeJS.ErrnoException) =>
        err.code === 'ECONNREFUSED' &&
        /no address of fleet\.test accepted a connection on port \d+ \(127\.0\.0\.2: ECONNREFUSED; 127\.0\.0\.3: ECONNREFUSED\)/.test(
          err.message,
        ),
    );
  });
});

describe('HTTPS_PROXY and NO_PROXY', () => {
  const target = { host: '127.0.0.1', port: 8443 };
  test('loopback goes through the proxy unless NO_PROXY names it', () => {
    assert.equal(proxyFor(target, { HTTPS_PROXY: 'http://proxy.test:3128' })?.host, 'proxy.test:3128');
    assert.equal(proxyFor(target, { https_proxy: 'proxy.test:3128' })?.href, 'http://proxy.test:3128/');
    assert.equal(proxyFor(target, { HTTPS_PROXY: 'http://p:1', NO_PROXY: '127.0.0.1' }), undefined);
    assert.equal(
      proxyFor(target, { HTTPS_PROXY: 'http://p:1', no_proxy: 'localhost,127.0.0.0/8' }),
      undefined,
    );
    assert.equal(proxyFor(target, {}), undefined);
  });

  test('NO_PROXY entries: names, domains, ports, CIDR blocks and *', () => {
    const cases: Array<[string, string, number, boolean]> = [
      ['fleet.example.com', 'example.com', 443, true],
      ['fleet.example.com', '.example.com', 443, true],
      ['fleet.example.com', '*.example.com', 443, true],
      ['badexample.com', 'example.com', 443, false],
      ['fleet.example.com', 'fleet.example.com:8443', 8443, true],
      ['fleet.example.com', 'fleet.example.com:8443', 443, false],
      ['10.1.2.3', '10.0.0.0/8', 443, true],
      ['11.1.2.3', '10.0.0.0/8', 443, false],
      ['::1', '[::1]:8443', 8443, true],
      ['::1', '::1', 8443, true],
      ['anything.test', '*', 443, true],
      ['127.0.0.1', 'localhost', 443, false],
      ['127.0.0.1', '', 443, false],
    ];
    for (const [host, entry, port, bypassed] of cases)
      assert.equal(bypassesProxy({ host, port }, `other.test, ${entry}`), bypassed, `${host} vs ${entry}`);
  });

  test('a proxy other than http:// is refused with a clear message', () => {
    assert.throws(
      () => proxyFor(target, { HTTPS_PROXY: 'socks5://p:1080' }),
      /^Error: HTTPS_PROXY: only http:\/\/ proxies are supported \(CONNECT\), not socks5:\/\/$/,
    );
  });
});
