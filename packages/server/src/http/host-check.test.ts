import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { httpJson, startTestServer, type TestServer } from '../testing/harness.js';
import { assertProblem } from '../testing/problems.js';
import { AdminHosts, parseHost } from './host-check.js';

describe('the names the admin plane answers to', () => {
  test('a Host header is split into a lowercased name and a port', () => {
    assert.deepEqual(parseHost('127.0.0.1:8080'), { name: '127.0.0.1', port: '8080' });
    assert.deepEqual(parseHost('LocalHost'), { name: 'localhost' });
    assert.deepEqual(parseHost('[::1]:8080'), { name: '::1', port: '8080' });
    assert.deepEqual(parseHost('fleet.example.'), { name: 'fleet.example' });
    for (const bad of ['', ':80', '[zz]:1', 'a b', 'user@host', 'host:port', '[::1', 'a/b']) {
      assert.equal(parseHost(bad), undefined, bad);
    }
  });

  test('configured names, SAN wildcards one label deep, loopback; nothing else', () => {
    const hosts = AdminHosts.from({
      adminListen: { host: '10.0.0.5' },
      publicUrl: 'https://fleet.example:8443',
      sans: ['*.edge.example', 'Extra.Example'],
      adminHosts: ['admin.example'],
    });
    for (const name of [
      '10.0.0.5',
      'fleet.example',
      'extra.example',
      'admin.example',
      'a.edge.example',
      'localhost',
      '127.0.0.1',
      '127.1.2.3',
      '::1',
    ])
      assert.ok(hosts.allows(name), name);
    for (const name of ['evil.example', 'a.b.edge.example', 'edge.example', 'fleet.example.evil', '10.0.0.6'])
      assert.ok(!hosts.allows(name), name);
  });

  test('on a wildcard address, every address of this host is one of its names', () => {
    const hosts = AdminHosts.from({ adminListen: { host: '0.0.0.0' }, sans: [], adminHosts: [] });
    const addresses = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
    assert.ok(addresses.length > 0);
    for (const { address } of addresses) assert.ok(hosts.allows(address.replace(/%.*$/, '')), address);
    assert.ok(!hosts.allows('0.0.0.0'));
  });

  test("an Origin must carry an allowed name and the port the request came to, or a proxy's name", () => {
    const hosts = new AdminHosts(['localhost', '127.0.0.1'], ['admin.example']);
    assert.ok(hosts.originAllowed('http://127.0.0.1:8080', '127.0.0.1:8080'));
    assert.ok(hosts.originAllowed('http://localhost:8080', '127.0.0.1:8080'));
    assert.ok(hosts.originAllowed('http://localhost', 'localhost:80'), 'a default port written out');
    assert.ok(hosts.originAllowed('https://admin.example', '127.0.0.1:8080'), 'behind a proxy');
    assert.ok(
      !hosts.originAllowed('http://evil.example:8080', 'evil.example:8080'),
      'the Host is not trusted',
    );
    assert.ok(
      !hosts.originAllowed('http://127.0.0.1:3000', '127.0.0.1:8080'),
      'another port is another origin',
    );
    assert.ok(!hosts.originAllowed('null', '127.0.0.1:8080'));
    assert.ok(!hosts.originAllowed('file:///x', '127.0.0.1:8080'));
  });
});

/** One request over a real socket with exactly the Host given (none when undefined). */
function rawGet(url: string, path: string, host: string | undefined, version = '1.1'): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `GET ${path} HTTP/${version}\r\n${host === undefined ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`,
      );
    });
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('a request naming another host is refused before any credential is looked at', () => {
  let t: TestServer;
  let port: string;
  before(async () => {
    t = await startTestServer('sqlite', {
      settings: {
        san: ['extra.example'],
        'admin-host': ['admin.example'],
        'public-url': 'https://fleet.example:8443',
      },
    });
    port = new URL(t.server.adminUrl).port;
  });
  after(() => t.close());

  const get = (path: string, headers: Record<string, string>) =>
    httpJson(`${t.server.adminUrl}${path}`, { method: 'GET', headers });
  const bearer = () => ({ authorization: `Bearer ${t.server.identity.adminToken}` });

  test('Host: evil.example is a 421 problem, with or without a token, on every kind of route', async () => {
    for (const host of ['evil.example', `evil.example:${port}`, 'EVIL.example.']) {
      assertProblem(await get('/v1/nodes', { host }), 421, 'misdirected_request');
      assertProblem(await get('/v1/nodes', { host, ...bearer() }), 421, 'misdirected_request');
      assertProblem(await get('/', { host }), 421, 'misdirected_request');
      assertProblem(await get('/healthz', { host }), 421, 'misdirected_request');
    }
    const signIn = await httpJson(`${t.server.adminUrl}/v1/session`, {
      method: 'POST',
      headers: { host: 'evil.example', origin: 'http://evil.example' },
      body: { token: t.server.identity.adminToken },
    });
    assertProblem(signIn, 421, 'misdirected_request');
    assert.equal(signIn.headers['set-cookie'], undefined, 'no session for a rebinding page');
  });

  test('loopback names and addresses, --san, --admin-host and --public-url are answered, port or not', async () => {
    const names = ['127.0.0.1', 'localhost', '[::1]', 'extra.example', 'admin.example', 'fleet.example'];
    for (const name of names) {
      for (const host of [name, `${name}:${port}`]) {
        assert.equal((await get('/v1/nodes', { host, ...bearer() })).status, 200, host);
        // Past the Host check comes the credential check, unchanged.
        assertProblem(await get('/v1/nodes', { host }), 401, 'unauthorized');
      }
    }
  });

  test('a request without a Host header is a 400', async () => {
    const answer = await rawGet(t.server.adminUrl, '/v1/nodes', undefined, '1.0');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /"code":"bad_host"/);
  });

  test('a console request must come from an allowed origin, not merely the Host it names', async () => {
    const session = await httpJson(`${t.server.adminUrl}/v1/session`, {
      method: 'POST',
      body: { token: t.server.identity.adminToken },
    });
    assert.equal(session.status, 201, session.body);
    const cookie = String(session.headers['set-cookie']).split(';')[0]!;
    const csrf = session.json.csrf as string;
    const post = (headers: Record<string, string>) =>
      httpJson(`${t.server.adminUrl}/v1/tokens`, {
        method: 'POST',
        headers: { cookie, 'x-muster-csrf': csrf, ...headers },
        body: {},
      });
    assertProblem(await post({ host: `evil.example:${port}`, origin: `http://evil.example:${port}` }), 421);
    assertProblem(
      await post({ host: `127.0.0.1:${port}`, origin: `http://evil.example:${port}` }),
      403,
      'csrf',
    );
    assertProblem(await post({ host: `127.0.0.1:${port}`, origin: 'http://127.0.0.1:3000' }), 403, 'csrf');
    assert.equal((await post({ host: `127.0.0.1:${port}`, origin: `http://localhost:${port}` })).status, 201);
    // A proxy in front, named by --admin-host, forwards the browser's origin but not its port.
    assert.equal((await post({ host: `127.0.0.1:${port}`, origin: 'https://admin.example' })).status, 201);
  });
});
