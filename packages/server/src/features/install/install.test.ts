import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { caPinOf } from '@muster/host';
import { serverConfigFrom } from '../../config.js';
import { ConfigError } from '../../errors.js';
import { type HttpsResult, startTestServer, type TestServer } from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';

// The agent plane's /v1/install routes over real TLS, as a new host meets them: no client
// certificate, a package dir as `npm run package` writes it (small stand-in files here; the
// e2e installer test runs the real package).

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** A package dir in package.mjs's layout: the files and a manifest of their sums. */
function packageDir(files: Record<string, string>, manifest?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'muster-package-'));
  const listed: Record<string, { sha256: string; bytes: number }> = {};
  for (const [name, body] of Object.entries(files)) {
    writeFileSync(join(dir, name), body);
    listed[name] = { sha256: sha256(body), bytes: Buffer.byteLength(body) };
  }
  const written = manifest ?? { version: '0.1.0', node: 'v24.22.3', files: listed };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(written));
  return dir;
}

/** GET over TLS without a client certificate, with the path sent exactly as given (no `..` folding). */
function rawGet(t: TestServer, path: string): Promise<HttpsResult> {
  const url = new URL(t.server.agentUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, method: 'GET', ca: t.server.identity.ca.pem, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body, json, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const AGENT = '#!/usr/bin/env node\nconsole.log("agent");\n';
const EXE = 'an executable, in a manner of speaking\n';
const DEB = 'a .deb\n';

describe('the agent package on the agent plane', () => {
  let t: TestServer;
  let dir: string;
  before(async () => {
    dir = packageDir({ 'muster-agent.cjs': AGENT, 'muster-agent': EXE, 'muster-agent_0.1.0_amd64.deb': DEB });
    // A file in the directory that the manifest does not list: never served.
    writeFileSync(join(dir, 'secret.txt'), 'not for download');
    t = await startTestServer('sqlite', { settings: { 'package-dir': dir } });
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the manifest lists each packaged file with its SHA-256 and size, with no client certificate', async () => {
    const res = await rawGet(t, '/v1/install/manifest');
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json, {
      version: '0.1.0',
      node: 'v24.22.3',
      files: [
        { name: 'muster-agent.cjs', sha256: sha256(AGENT), size: Buffer.byteLength(AGENT) },
        { name: 'muster-agent', sha256: sha256(EXE), size: Buffer.byteLength(EXE) },
        { name: 'muster-agent_0.1.0_amd64.deb', sha256: sha256(DEB), size: Buffer.byteLength(DEB) },
      ],
    });
  });

  test('each listed file is served byte for byte', async () => {
    for (const [name, body] of [
      ['muster-agent.cjs', AGENT],
      ['muster-agent', EXE],
      ['muster-agent_0.1.0_amd64.deb', DEB],
    ] as const) {
      const res = await rawGet(t, `/v1/install/files/${name}`);
      assert.equal(res.status, 200, `${name}: ${res.body}`);
      assert.equal(res.body, body);
      assert.equal(res.headers['content-type'], 'application/octet-stream');
      assert.equal(res.headers['content-length'], String(Buffer.byteLength(body)));
    }
  });

  test('no path outside the manifest is served: .., encoded slashes and dots, unlisted and unknown names', async () => {
    for (const path of [
      '/v1/install/files/..',
      '/v1/install/files/../manifest',
      '/v1/install/files/..%2Fmanifest.json',
      '/v1/install/files/..%2f..%2fmanifest.json',
      '/v1/install/files/%2e%2e%2fmanifest.json',
      '/v1/install/files/%2e%2e',
      '/v1/install/files/manifest.json',
      '/v1/install/files/secret.txt',
      '/v1/install/files/.%2Fsecret.txt',
      '/v1/install/files/%2Fetc%2Fpasswd',
      '/v1/install/files/muster-agent%00',
      '/v1/install/files/muster-agent.cjs%2F..%2Fsecret.txt',
      '/v1/install/files/nope',
    ]) {
      const res = await rawGet(t, path);
      assertProblem(res, 404, 'not_found');
      assert.doesNotMatch(res.body, /not for download|"files"|root:/, `${path} leaked a file`);
    }
  });

  test('ca.pem is the CA join lines pin, and GET /v1/install carries its hash, the pins and the manifest', async () => {
    const ca = await rawGet(t, '/v1/install/ca.pem');
    assert.equal(ca.status, 200);
    const info = await t.admin('GET', '/v1/install');
    assert.equal(info.status, 200, info.body);
    const token = await t.admin('POST', '/v1/tokens', {});
    assert.equal(caPinOf(ca.body), token.json.caPin);
    assert.equal(info.json.caPin, token.json.caPin);
    assert.equal(info.json.caCertSha256, sha256(ca.body));
    assert.equal(info.json.url, t.server.agentUrl);
    assert.match(token.json.agentCommand, new RegExp(`--root-pin ${info.json.rootPin} `));
    assert.deepEqual(info.json.manifest, (await rawGet(t, '/v1/install/manifest')).json);
  });

  test('install.sh carries the sums of the manifest and parses as POSIX sh', async () => {
    const res = await rawGet(t, '/v1/install/install.sh');
    assert.equal(res.status, 200);
    assert.match(res.body, /^#!\/bin\/sh\n/);
    assert.match(res.body, new RegExp(`file=muster-agent; sum=${sha256(EXE)};`));
    assert.match(res.body, new RegExp(`file=muster-agent.cjs; sum=${sha256(AGENT)};`));
    const scriptFile = join(dir, '..', `install-${process.pid}.sh`);
    writeFileSync(scriptFile, res.body);
    try {
      const parsed = spawnSync('sh', ['-n', scriptFile], { encoding: 'utf8' });
      assert.equal(parsed.status, 0, parsed.stderr);
    } finally {
      rmSync(scriptFile, { force: true });
    }
  });
});

describe('the agent package, when there is none or it is damaged', () => {
  test('no package: every route that needs one is 404 no_package saying how to build it, naming no path', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'muster-no-package-'));
    const t = await startTestServer('sqlite', { settings: { 'package-dir': empty } });
    try {
      for (const path of [
        '/v1/install/manifest',
        '/v1/install/install.sh',
        '/v1/install/files/muster-agent',
      ]) {
        const problem = assertProblem(await rawGet(t, path), 404, 'no_package');
        assert.match(problem.detail, /^no agent package on this server; build it with "npm run package"/);
        assert.match(problem.detail, /--package-dir DIR/);
      }
      const info = await t.admin('GET', '/v1/install');
      assertProblem(info, 404, 'no_package');
      // The CA needs no package: it is what the line checks first.
      assert.equal((await rawGet(t, '/v1/install/ca.pem')).status, 200);
    } finally {
      await t.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('a malformed manifest, or a listed file that is missing, is 404 no_package too, never a 500', async () => {
    const broken = packageDir(
      {},
      { version: '0.1.0', node: 'v24', files: { '../x': { sha256: 'ab', bytes: 1 } } },
    );
    const missing = packageDir({ 'muster-agent': EXE });
    rmSync(join(missing, 'muster-agent'));
    const a = await startTestServer('sqlite', { settings: { 'package-dir': broken } });
    const b = await startTestServer('sqlite', { settings: { 'package-dir': missing } });
    try {
      const malformed = assertProblem(await rawGet(a, '/v1/install/manifest'), 404, 'no_package');
      assert.match(malformed.detail, /malformed manifest/);
      const lacking = assertProblem(await rawGet(b, '/v1/install/files/muster-agent'), 404, 'no_package');
      assert.match(lacking.detail, /lists muster-agent but lacks the file/);
    } finally {
      await a.close();
      await b.close();
      rmSync(broken, { recursive: true, force: true });
      rmSync(missing, { recursive: true, force: true });
    }
  });

  test('--package-dir that is not a directory is refused at start, naming the flag', () => {
    assert.throws(
      () => serverConfigFrom({ 'package-dir': join(tmpdir(), 'muster-no-such-package-dir') }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => /^--package-dir: .* is not a directory/.test(p)),
    );
  });
});

describe('the install routes are rate limited per source address, as enrollment is', () => {
  let t: TestServer;
  let dir: string;
  before(async () => {
    dir = packageDir({ 'muster-agent': EXE });
    // One a second in bursts of five, on a clock that stands still: the sixth is refused.
    t = await startTestServer('sqlite', { settings: { 'package-dir': dir, 'enroll-rate': '1' } });
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('past the burst, downloads get 429 rate_limited with Retry-After, and the clock lets them through again', async () => {
    const paths = ['/v1/install/ca.pem', '/v1/install/manifest', '/v1/install/install.sh'];
    for (let i = 0; i < 5; i++) assert.equal((await rawGet(t, paths[i % 3]!)).status, 200);
    for (const path of [...paths, '/v1/install/files/muster-agent']) {
      const res = await rawGet(t, path);
      const problem = assertProblem(res, 429, 'rate_limited');
      assert.match(problem.detail, /too many downloads from this address/);
      assert.ok(Number(res.headers['retry-after']) >= 1);
    }
    t.clock.advance(2_000);
    assert.equal((await rawGet(t, '/v1/install/files/muster-agent')).status, 200);
  });
});
