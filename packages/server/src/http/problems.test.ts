import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { PROBLEM_CONTENT_TYPE } from '@muster/proto';
import {
  type HttpsResult,
  httpJson,
  httpsJson,
  startTestServer,
  type TestServer,
} from '../testing/harness.js';
import { assertProblem } from '../testing/problems.js';
import { MAX_BODY_BYTES } from './json.js';

/** Text a client put in its request: an answer must never repeat it. */
const MARKER = 'zq9marker';

/** Sends raw bytes on a fresh connection and reads the whole answer (the server closes it). */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** Parses a raw HTTP/1.1 answer into what the harness's clients return. */
function parseRaw(text: string): HttpsResult {
  const [head, body = ''] = text.split('\r\n\r\n');
  const [statusLine, ...lines] = head!.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body, json: JSON.parse(body) };
}

describe('every error is a problem document from the one handler', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('sqlite');
  });
  after(async () => {
    await t.close();
  });

  const admin = (method: string, path: string, opts: Parameters<typeof httpJson>[1] = {}) =>
    httpJson(`${t.server.adminUrl}${path}`, { method, ...opts });
  const agentPlane = (method: string, path: string, opts: Parameters<typeof httpsJson>[1] = {}) =>
    httpsJson(`${t.server.agentUrl}${path}`, { method, ca: t.server.identity.ca.pem, ...opts });
  const auth = () => ({ authorization: `Bearer ${t.server.identity.adminToken}` });

  /** A problem document, never cached, that does not repeat what the client sent. */
  function assertRefusal(res: HttpsResult, status: number, code: string) {
    const problem = assertProblem(res, status, code);
    assert.equal(String(res.headers['content-type']).split(';')[0], PROBLEM_CONTENT_TYPE);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.ok(!res.body.includes(MARKER), `the answer echoes the request: ${res.body}`);
    return problem;
  }

  test('a 150-character path parameter is a 414, before authentication', async () => {
    const long = `${MARKER}${'a'.repeat(141)}`;
    assert.equal(long.length, 150);
    for (const [method, path] of [
      ['GET', `/v1/nodes/${long}`],
      ['DELETE', `/v1/tokens/${long}`],
      ['GET', `/v1/commands/${long}`],
    ]) {
      assertRefusal(await admin(method!, path!), 414, 'uri_too_long');
      assertRefusal(await admin(method!, path!, { headers: auth() }), 414, 'uri_too_long');
    }
    // Up to the limit, the route answers for itself (an operator's own lookup may name what it asked).
    assertProblem(await admin('GET', `/v1/nodes/${'a'.repeat(128)}`, { headers: auth() }), 404, 'not_found');
  });

  test('an unknown route is a 404 that does not repeat the path, on both planes', async () => {
    assertRefusal(await admin('GET', `/v1/${MARKER}`), 404, 'not_found');
    assertRefusal(await admin('GET', `/v1/${MARKER}`, { headers: auth() }), 404, 'not_found');
    assertRefusal(await agentPlane('POST', `/${MARKER}?${MARKER}=1`, { body: {} }), 404, 'not_found');
  });

  test('a known route asked with another method is a 405 that says which it takes', async () => {
    const put = assertRefusal(
      await admin('PUT', '/v1/nodes', { headers: auth(), body: {} }),
      405,
      'method_not_allowed',
    );
    assert.match(put.detail, /GET/);
    const res = await admin('PATCH', '/v1/tokens/tok_1', { headers: auth(), body: {} });
    assertRefusal(res, 405, 'method_not_allowed');
    assert.equal(res.headers.allow, 'DELETE');
    assert.equal((await admin('POST', '/healthz')).headers.allow, 'GET, HEAD');
    assertRefusal(await agentPlane('GET', '/v1/enroll'), 405, 'method_not_allowed');
  });

  test('a body too large is a 413, the wrong content type a 415, bad JSON a 400', async () => {
    const big = `{"labels":{"${MARKER}":"${'x'.repeat(MAX_BODY_BYTES)}"}}`;
    assertRefusal(
      await admin('POST', '/v1/tokens', { headers: auth(), rawBody: big }),
      413,
      'body_too_large',
    );
    assertRefusal(await agentPlane('POST', '/v1/enroll', { rawBody: big }), 413, 'body_too_large');
    const plain = { ...auth(), 'content-type': 'text/plain' };
    assertRefusal(
      await admin('POST', '/v1/tokens', { headers: plain, rawBody: MARKER }),
      415,
      'unsupported_media_type',
    );
    assertRefusal(
      await admin('POST', '/v1/tokens', { headers: auth(), rawBody: `{"${MARKER}":` }),
      400,
      'malformed_json',
    );
    assertRefusal(await agentPlane('POST', '/v1/enroll', { rawBody: `{"${MARKER}"` }), 400, 'malformed_json');
  });

  test('a malformed URL is a 400', async () => {
    assertRefusal(await admin('GET', `/v1/nodes/${MARKER}%E0%A4%A`, { headers: auth() }), 400, 'bad_request');
  });

  test('headers too large for the HTTP parser get a problem document too', async () => {
    const port = Number(new URL(t.server.adminUrl).port);
    const text = await rawExchange(
      port,
      `GET /v1/nodes HTTP/1.1\r\nhost: 127.0.0.1\r\nx-${MARKER}: ${'y'.repeat(20_000)}\r\n\r\n`,
    );
    assertRefusal(parseRaw(text), 431, 'headers_too_large');
    const garbage = parseRaw(await rawExchange(port, `NOT A REQUEST ${MARKER}\r\n\r\n`));
    assertRefusal(garbage, 400, 'bad_request');
  });
});
