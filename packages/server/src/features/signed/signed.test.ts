import assert from 'node:assert/strict';
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createCsrPem } from '@muster/host';
import {
  contentDigest,
  SIGNATURE_LABEL,
  type SignatureInput,
  serializeSignatureInput,
  signatureBase,
  signBase,
  signRequest,
} from '@muster/proto';
import WebSocket from 'ws';
import { SIGNATURE_REFUSED } from '../../http/signatures.js';
import {
  createToken,
  dialects,
  enrollAgent,
  type HttpsResult,
  httpsJson,
  sampleHeartbeat,
  startTestServer,
  type TestAgent,
  type TestServer,
  testFacts,
} from '../../testing/harness.js';
import { testCsr } from '../../testing/pki.js';
import { assertProblem } from '../../testing/problems.js';

interface Sent {
  method?: string;
  path?: string;
  body?: string;
  /** Signs this body instead of the one sent. */
  signedBody?: string;
  now?: number;
  key?: KeyObject;
  keyid?: string;
  components?: string[];
  headers?: Record<string, string>;
  localAddress?: string;
}

/** Raw bytes of a request as a proxy would forward it, so a replay can send them again unchanged. */
interface Wire {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

function serialOf(a: TestAgent): string {
  return new X509Certificate(a.certPem).serialNumber.toLowerCase();
}

for (const dialect of dialects()) {
  describe(`signed agent requests on --proxied-listen (${dialect})`, () => {
    let t: TestServer;
    let base: URL;
    let node: TestAgent;
    let other: TestAgent;
    before(async () => {
      t = await startTestServer(dialect, {
        settings: { 'proxied-listen': '127.0.0.1:0', 'trusted-proxy': ['127.0.0.1', '::1'] },
      });
      base = new URL(t.server.proxiedUrl!);
      node = await enrollAgent(t, { name: 'signed-1' });
      other = await enrollAgent(t, { name: 'signed-2' });
    });
    after(async () => {
      node?.agent.destroy();
      other?.agent.destroy();
      await t?.close();
    });

    function wire(a: TestAgent, opts: Sent = {}): Wire {
      const method = opts.method ?? 'POST';
      const path = opts.path ?? '/v1/agent/heartbeat';
      const body = opts.body ?? JSON.stringify(sampleHeartbeat(1, t.clock));
      const key = opts.key ?? createPrivateKey(a.keyPem);
      const keyid = opts.keyid ?? serialOf(a);
      const now = opts.now ?? t.clock.now();
      const message = { method, authority: base.host, target: path };
      let headers: Record<string, string>;
      if (opts.components) {
        const digest = contentDigest(opts.signedBody ?? body);
        const input: SignatureInput = {
          components: opts.components,
          params: [
            ['created', Math.floor(now / 1000)],
            ['nonce', `n${Math.random().toString(36).slice(2)}xxxxxxxxxxxxxxxx`],
            ['keyid', keyid],
          ],
        };
        const sig = signBase(
          signatureBase({ ...message, headers: { 'content-digest': digest } }, input),
          key,
        );
        headers = {
          'content-digest': digest,
          'signature-input': `${SIGNATURE_LABEL}=${serializeSignatureInput(input)}`,
          signature: `${SIGNATURE_LABEL}=:${sig.toString('base64')}:`,
        };
      } else {
        headers = signRequest(message, opts.signedBody ?? body, key, keyid, now);
        if (opts.signedBody !== undefined) headers['content-digest'] = contentDigest(opts.signedBody);
      }
      return {
        method,
        path,
        body,
        headers: { host: base.host, 'content-type': 'application/json', ...headers, ...opts.headers },
      };
    }

    function send(w: Wire, localAddress?: string, to: URL = base): Promise<HttpsResult> {
      return new Promise((resolve, reject) => {
        const req = httpRequest(
          {
            host: to.hostname,
            port: to.port,
            method: w.method,
            path: w.path,
            headers: {
              ...w.headers,
              ...(w.body ? { 'content-length': String(Buffer.byteLength(w.body)) } : {}),
            },
            agent: false,
            ...(localAddress ? { localAddress } : {}),
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let json: unknown;
              try {
                json = text ? JSON.parse(text) : undefined;
              } catch {}
              resolve({ status: res.statusCode ?? 0, json, body: text, headers: res.headers });
            });
          },
        );
        req.on('error', reject);
        req.end(w.method === 'GET' ? undefined : w.body);
      });
    }

    async function nonces(): Promise<number> {
      const row = await t.server.store.db
        .selectFrom('request_nonces')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    }
    async function latestSeq(a: TestAgent): Promise<number | undefined> {
      const res = await t.admin('GET', `/v1/nodes/${a.nodeId}`);
      return res.json.latest?.seq;
    }
    /** Sends a request that must be refused, and checks nothing was stored: no heartbeat, no nonce. */
    async function refused(w: Wire, a: TestAgent = node, localAddress?: string, to?: URL): Promise<void> {
      const seq = await latestSeq(a);
      const before = await nonces();
      const res = await send(w, localAddress, to);
      const problem = assertProblem(res, 401, 'signature_refused');
      assert.equal(problem.detail, SIGNATURE_REFUSED);
      assert.equal(await nonces(), before, 'a refused request left a nonce behind');
      assert.equal(await latestSeq(a), seq, 'a refused heartbeat was stored');
    }
    const heartbeatBody = (seq: number) => JSON.stringify(sampleHeartbeat(seq, t.clock));

    test('a signed heartbeat through the proxied listener is taken as the node it names', async () => {
      const res = await send(wire(node, { body: heartbeatBody(7) }));
      assert.equal(res.status, 202, res.body);
      assert.equal(await latestSeq(node), 7);
    });

    test('a signed request replayed byte for byte is refused, also by a second replica', async () => {
      const w = wire(node, { body: heartbeatBody(8) });
      assert.equal((await send(w)).status, 202);
      await refused(w);
      // The second replica shares the store, and with it the nonces seen.
      const replica = await startTestServer(dialect, {
        db: t.db,
        dataDir: t.dataDir,
        clock: t.clock,
        settings: { 'proxied-listen': '127.0.0.1:0', 'trusted-proxy': ['127.0.0.1'] },
      });
      try {
        await refused(w, node, undefined, new URL(replica.server.proxiedUrl!));
      } finally {
        await replica.close();
      }
    });

    test('created 120 s old or 120 s ahead is refused', async () => {
      await refused(wire(node, { body: heartbeatBody(20), now: t.clock.now() - 120_000 }));
      await refused(wire(node, { body: heartbeatBody(21), now: t.clock.now() + 120_000 }));
    });

    test("signed by another node's key under this node's keyid is refused", async () => {
      await refused(wire(node, { body: heartbeatBody(22), key: createPrivateKey(other.keyPem) }));
    });

    test('a body that does not match content-digest is refused', async () => {
      await refused(wire(node, { body: heartbeatBody(23), signedBody: heartbeatBody(24) }));
    });

    test('a component list leaving out @path or content-digest is refused', async () => {
      await refused(
        wire(node, {
          body: heartbeatBody(25),
          components: ['@method', '@authority', '@query', 'content-digest'],
        }),
      );
      await refused(
        wire(node, { body: heartbeatBody(26), components: ['@method', '@authority', '@path', '@query'] }),
      );
    });

    test('no signature at all is refused on the proxied listener', async () => {
      const w = wire(node, { body: heartbeatBody(27) });
      const { signature: _s, 'signature-input': _i, ...unsigned } = w.headers;
      await refused({ ...w, headers: unsigned });
    });

    test('X-Forwarded-For from an address that is not a --trusted-proxy is refused', async () => {
      const w = wire(node, {
        body: heartbeatBody(28),
        headers: { 'x-forwarded-for': '203.0.113.9', forwarded: 'for=203.0.113.9' },
      });
      await refused(w, node, '127.0.0.2');
      // The same request from the trusted proxy passes: it was the address, not the request.
      assert.equal((await send(w)).status, 202);
    });

    test('a keyid of a superseded certificate is refused', async () => {
      const renewing = await enrollAgent(t, { name: 'signed-renew' });
      const oldSerial = serialOf(renewing);
      const res = await httpsJson(`${t.server.agentUrl}/v1/agent/renew`, {
        body: { csr: await createCsrPem(renewing.keys, renewing.name) },
        agent: renewing.agent,
      });
      assert.equal(res.status, 200, res.body);
      const renewed = { ...renewing, certPem: res.json.certificate as string };
      // Its first use makes the renewed certificate current and supersedes the old one.
      assert.equal((await send(wire(renewed, { body: heartbeatBody(30) }))).status, 202);
      await refused(wire(renewing, { body: heartbeatBody(31), keyid: oldSerial }), renewing);
      renewing.agent.destroy();
    });

    test('a keyid of a revoked certificate (its node decommissioned) is refused', async () => {
      const doomed = await enrollAgent(t, { name: 'signed-doomed' });
      assert.equal((await send(wire(doomed, { body: heartbeatBody(40) }))).status, 202);
      assert.equal((await t.admin('DELETE', `/v1/nodes/${doomed.nodeId}`)).status, 204);
      await refused(wire(doomed, { body: heartbeatBody(41) }), doomed);
      doomed.agent.destroy();
    });

    test('the channel upgrade must be signed; a signed one carries heartbeats', async () => {
      const url = `ws://${base.host}/v1/agent/channel`;
      const unsigned = new WebSocket(url);
      const status = await new Promise<number>((resolve) => {
        unsigned.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        unsigned.on('open', () => resolve(101));
        unsigned.on('error', () => {});
      });
      assert.equal(status, 401);
      const w = wire(node, { method: 'GET', path: '/v1/agent/channel', body: '' });
      const ws = new WebSocket(url, { headers: w.headers });
      const messages: Array<{ type: string; seq?: number }> = [];
      await new Promise<void>((resolve, reject) => {
        ws.on('message', (data) => {
          const m = JSON.parse(String(data));
          messages.push(m);
          if (m.type === 'settings')
            ws.send(JSON.stringify({ type: 'heartbeat', heartbeat: sampleHeartbeat(50, t.clock) }));
          if (m.type === 'ack') resolve();
        });
        ws.on('unexpected-response', (_req, res) => reject(new Error(`channel refused: ${res.statusCode}`)));
        ws.on('error', reject);
      });
      ws.close();
      assert.deepEqual(
        messages.filter((m) => m.type === 'ack').map((m) => m.seq),
        [50],
      );
    });

    test('enrollment through the proxied listener needs no signature: the CSR is the proof of possession', async () => {
      const token = await createToken(t);
      const body = JSON.stringify({
        token,
        csr: await testCsr(),
        name: 'signed-enrolled',
        facts: testFacts(),
      });
      const res = await send({
        method: 'POST',
        path: '/v1/enroll',
        body,
        headers: { host: base.host, 'content-type': 'application/json' },
      });
      assert.equal(res.status, 201, res.body);
      assert.equal(res.json.name, 'signed-enrolled');
    });
  });
}
