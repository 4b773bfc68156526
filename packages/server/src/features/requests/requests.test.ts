import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair, type KeyPair } from '@muster/host';
import { spkiFingerprint } from '@muster/proto';
import {
  decisionsAbout,
  dialects,
  httpsJson,
  sampleHeartbeat,
  startReplicas,
  startTestServer,
  type TestServer,
  testFacts,
} from '../../testing/harness.js';

interface Asker {
  keys: KeyPair;
  fingerprint: string;
  csr: string;
}

async function asker(name: string): Promise<Asker> {
  const keys = await generateKeyPair();
  const spki = createPublicKey(keys.privateKey).export({ type: 'spki', format: 'der' });
  return { keys, fingerprint: spkiFingerprint(spki), csr: createCsrPem(keys, name) };
}

function ask(t: TestServer, name: string, who: Asker, extra: Record<string, unknown> = {}) {
  return httpsJson(`${t.server.agentUrl}/v1/enroll/requests`, {
    body: { csr: who.csr, name, facts: testFacts(name), ...extra },
    ca: t.server.identity.ca.pem,
  });
}

function poll(t: TestServer, id: string) {
  return httpsJson(`${t.server.agentUrl}/v1/enroll/requests/${id}`, {
    method: 'GET',
    ca: t.server.identity.ca.pem,
  });
}

async function eventKinds(t: TestServer, kind: string): Promise<Array<Record<string, unknown>>> {
  const res = await t.admin('GET', `/v1/events?kind=${kind}&limit=100`);
  assert.equal(res.status, 200, res.body);
  return res.json.items as Array<Record<string, unknown>>;
}

for (const dialect of dialects()) {
  describe(`enrollment requests (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect, { settings: { 'request-ttl': '10m' } });
    });
    after(async () => {
      await t.close();
    });

    test('a queued request is approved only with its own fingerprint, then the host holds a working identity', async () => {
      const web = await asker('web-1');
      const queued = await ask(t, 'web-1', web, { profile: 'web', labels: { env: 'prod' } });
      assert.equal(queued.status, 202, queued.body);
      assert.equal(queued.json.status, 'pending');
      assert.equal(queued.json.fingerprint, web.fingerprint);
      // The same key asking again (a restarted agent) gets the request it has.
      assert.equal((await ask(t, 'web-1', web)).json.id, queued.json.id);
      const listed = (await t.admin('GET', '/v1/enrollment/requests')).json.items;
      assert.deepEqual(
        listed.map((r: Record<string, unknown>) => [r.name, r.fingerprint, r.profile, r.labels]),
        [['web-1', web.fingerprint, 'web', { env: 'prod' }]],
      );

      const other = await asker('web-1');
      const wrong = await t.admin('POST', '/v1/enrollment/requests/web-1/approve', {
        fingerprint: other.fingerprint,
      });
      assert.equal(wrong.status, 409, wrong.body);
      assert.equal(wrong.json.code, 'fingerprint_mismatch');
      // Nothing changed: still waiting, no node.
      assert.equal((await poll(t, queued.json.id)).json.status, 'pending');
      assert.equal((await t.admin('GET', '/v1/nodes/web-1')).status, 404);

      const approved = await t.admin('POST', '/v1/enrollment/requests/web-1/approve', {
        fingerprint: web.fingerprint,
      });
      assert.equal(approved.status, 200, approved.body);
      const state = (await poll(t, queued.json.id)).json;
      assert.equal(state.status, 'approved');
      const cert = new X509Certificate(state.enrolled.certificate);
      assert.ok(cert.checkPrivateKey(web.keys.privateKey));
      assert.equal(state.enrolled.profile, 'web');
      assert.deepEqual(state.enrolled.labels, { env: 'prod' });
      const [enrolled] = await decisionsAbout(t, `node:${approved.json.nodeId}`);
      assert.equal(enrolled?.kind, 'node.enrolled');
      assert.equal(enrolled?.actor, 'user:admin');
      assert.equal(enrolled?.data.fingerprint, web.fingerprint);

      const tls = new HttpsAgent({
        key: exportPrivateKeyPem(web.keys.privateKey),
        cert: state.enrolled.certificate,
        ca: t.server.identity.ca.pem,
      });
      const beat = await httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, {
        body: sampleHeartbeat(),
        agent: tls,
      });
      tls.destroy();
      assert.equal(beat.status, 202, beat.body);
      assert.deepEqual((await t.admin('GET', '/v1/enrollment/requests')).json.items, []);
    });

    test('a second key asking for a waiting name is refused; a held name too', async () => {
      const first = await asker('db-1');
      assert.equal((await ask(t, 'db-1', first)).status, 202);
      const second = await ask(t, 'db-1', await asker('db-1'));
      assert.equal(second.status, 409, second.body);
      assert.equal(second.json.code, 'request_pending');
      const held = await ask(t, 'web-1', await asker('web-1'));
      assert.equal(held.status, 409, held.body);
      assert.equal(held.json.code, 'name_taken');
    });

    test('a rejection is the operator’s ledger decision, and the host learns it', async () => {
      const cache = await asker('cache-1');
      const queued = await ask(t, 'cache-1', cache);
      const rejected = await t.admin('POST', '/v1/enrollment/requests/cache-1/reject');
      assert.equal(rejected.status, 200, rejected.body);
      assert.equal((await poll(t, queued.json.id)).json.status, 'rejected');
      const [decision] = await decisionsAbout(t, `request:${queued.json.id}`);
      assert.equal(decision?.kind, 'enrollment.rejected');
      assert.equal(decision?.actor, 'user:admin');
      const again = await t.admin('POST', '/v1/enrollment/requests/cache-1/approve', {
        fingerprint: cache.fingerprint,
      });
      assert.equal(again.status, 404, again.body);
    });

    test('a request expires: the host is told, the queue drops it, approval is refused', async () => {
      const late = await asker('late-1');
      const queued = await ask(t, 'late-1', late);
      t.clock.advance(10 * 60_000);
      assert.equal((await poll(t, queued.json.id)).json.status, 'expired');
      const names = (await t.admin('GET', '/v1/enrollment/requests')).json.items.map(
        (r: { name: string }) => r.name,
      );
      assert.ok(!names.includes('late-1'));
      const approve = await t.admin('POST', '/v1/enrollment/requests/late-1/approve', {
        fingerprint: late.fingerprint,
      });
      assert.equal(approve.status, 404, approve.body);
      const expired = await eventKinds(t, 'enrollment.expired');
      assert.ok(expired.some((e) => (e.data as { name: string }).name === 'late-1'));
    });

    test('bad input: a bad name, a bad CSR, an unknown request, a malformed fingerprint', async () => {
      const who = await asker('x');
      assert.equal((await ask(t, 'Not_A_Name', who)).json.code, 'bad_name');
      const bad = await httpsJson(`${t.server.agentUrl}/v1/enroll/requests`, {
        body: { csr: 'not a csr', name: 'ok-1', facts: testFacts() },
        ca: t.server.identity.ca.pem,
      });
      assert.equal(bad.status, 400, bad.body);
      assert.equal((await poll(t, 'req_nope')).status, 404);
      const malformed = await t.admin('POST', '/v1/enrollment/requests/db-1/approve', { fingerprint: 'abc' });
      assert.equal(malformed.status, 422, malformed.body);
    });

    test('a request file is signed once, in the operator’s name', async () => {
      const edge = await asker('edge-1');
      const body = { csr: edge.csr, name: 'edge-1', facts: testFacts('edge-1') };
      const signed = await t.admin('POST', '/v1/enrollment/grants', body);
      assert.equal(signed.status, 201, signed.body);
      assert.equal(signed.json.fingerprint, edge.fingerprint);
      assert.ok(new X509Certificate(signed.json.enrolled.certificate).checkPrivateKey(edge.keys.privateKey));
      const [decision] = await decisionsAbout(t, `node:${signed.json.enrolled.nodeId}`);
      assert.equal(decision?.actor, 'user:admin');
      assert.equal(decision?.data.via, 'grant');
      const twice = await t.admin('POST', '/v1/enrollment/grants', { ...body, name: 'edge-2' });
      assert.equal(twice.status, 409, twice.body);
      assert.equal(twice.json.code, 'already_signed');
      // One request file signed twice at once, under two names: one node.
      const twin = await asker('twin');
      const both = await Promise.all(
        ['twin-a', 'twin-b'].map((name) =>
          t.admin('POST', '/v1/enrollment/grants', { csr: twin.csr, name, facts: testFacts(name) }),
        ),
      );
      assert.deepEqual(both.map((r) => r.status).sort(), [201, 409], both.map((r) => r.body).join('\n'));
    });
  });

  describe(`the request queue is bounded (${dialect})`, () => {
    test('a full queue and a flood from one address are answered 429 with a clear message', async () => {
      const t = await startTestServer(dialect, {
        settings: { 'max-pending-requests': '2', 'request-rate': '3' },
      });
      try {
        assert.equal((await ask(t, 'q-1', await asker('q-1'))).status, 202);
        assert.equal((await ask(t, 'q-2', await asker('q-2'))).status, 202);
        const full = await ask(t, 'q-3', await asker('q-3'));
        assert.equal(full.status, 429, full.body);
        assert.match(full.json.detail, /enrollment queue is full \(2 requests waiting\)/);
        const flood = await ask(t, 'q-4', await asker('q-4'));
        assert.equal(flood.status, 429, flood.body);
        assert.match(flood.json.detail, /too many enrollment requests from this address/);
        assert.ok(Number(flood.headers['retry-after']) >= 1);
        assert.equal((await t.admin('GET', '/v1/enrollment/requests')).json.items.length, 2);
      } finally {
        await t.close();
      }
    });
  });

  describe(`requests across replicas (${dialect})`, () => {
    test('approved on one replica, the host polling the other is let in', async () => {
      const { a, b, close } = await startReplicas(dialect);
      try {
        const host = await asker('far-1');
        const queued = await ask(a, 'far-1', host);
        assert.equal(
          (await b.admin('GET', '/v1/enrollment/requests')).json.items[0]?.fingerprint,
          host.fingerprint,
        );
        const approved = await a.admin('POST', '/v1/enrollment/requests/far-1/approve', {
          fingerprint: host.fingerprint,
        });
        assert.equal(approved.status, 200, approved.body);
        const state = (await poll(b, queued.json.id)).json;
        assert.equal(state.status, 'approved');
        assert.equal(state.enrolled.nodeId, approved.json.nodeId);
        // Two operators approving at once on two replicas: one node, the other is told.
        const again = await b.admin('POST', '/v1/enrollment/requests/far-1/approve', {
          fingerprint: host.fingerprint,
        });
        assert.equal(again.status, 404, again.body);
      } finally {
        await close();
      }
    });
  });
}
