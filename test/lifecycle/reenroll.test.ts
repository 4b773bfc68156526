import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { NodeView, TokenCreated } from '@muster/proto';
import { ManualClock } from '@muster/server';
import { type InProcessServer, startAgent, startInProcessServer } from '../support/in-process.js';
import { waitFor } from '../support/processes.js';
import { dialects, Sandbox } from '../support/sandbox.js';

const HOUR = 3_600_000;

async function token(t: InProcessServer, body: object = {}): Promise<string> {
  const res = await t.admin('POST', '/v1/tokens', body);
  assert.equal(res.status, 201);
  return (res.json as TokenCreated).secret;
}

async function nodesNamed(t: InProcessServer, name: string, status?: string): Promise<NodeView[]> {
  const res = await t.admin('GET', `/v1/nodes${status ? `?status=${status}` : ''}`);
  return (res.json.items as NodeView[]).filter((n) => n.name === name);
}

for (const dialect of dialects()) {
  describe(`an agent that lost its identity (${dialect})`, () => {
    const sandbox = new Sandbox();
    after(() => sandbox.cleanup());

    test('expired while its host was off: it says so, keeps retrying; a general token is refused, a token for its name brings the same node back', async () => {
      // The server's clock starts two hours back, so the one-minute certificate it issues has
      // expired by the real time every TLS handshake checks.
      const clock = new ManualClock(Date.now() - 2 * HOUR);
      const t = await startInProcessServer(
        sandbox,
        dialect,
        { 'cert-lifetime': '1m', 'heartbeat-interval': '1s' },
        clock,
      );
      try {
        const base = {
          server: new URL(t.server.agentUrl),
          caPin: t.server.identity.ca.pin,
          rootPin: t.server.rootPin,
          name: 'lc-expired',
        };
        const first = startAgent(sandbox, {
          ...base,
          token: await token(t, { profile: 'web', labels: { rack: 'r1' } }),
        });
        const refusals = () =>
          first.logs.filter((l) => l.level === 'error' && /certificate expired/.test(l.msg));
        await waitFor('the agent to report its expired identity three times', async () =>
          refusals().length >= 3 ? true : undefined,
        );
        assert.match(refusals()[0]!.msg, /expired identity cannot be renewed/);
        assert.match(refusals()[0]!.msg, /muster token create --name lc-expired/);
        // Backing off, not looping: each retry comes no sooner than the wait the agent announced
        // (a full-jitter draw, so any one wait may be short; the backoff tests show the windows grow).
        const seen = refusals().slice(0, 3);
        for (let i = 1; i < seen.length; i++) {
          const announced = Number(seen[i - 1]!.fields?.retryInMs);
          assert.ok(Number.isFinite(announced), 'each refusal says when the agent retries');
          const gap = seen[i]!.at - seen[i - 1]!.at;
          assert.ok(gap >= announced - 25, `retried after ${gap} ms, having announced ${announced} ms`);
        }
        assert.equal(first.acks.length, 0);
        assert.equal(first.renewed.length, 0, 'no renewal is tried on a refused identity');
        await first.stop();
        const [old] = await nodesNamed(t, 'lc-expired');
        assert.ok(old);

        clock.set(Date.now());
        // A token any host could use must not take the name over from the node holding it.
        const general = startAgent(sandbox, { ...base, token: await token(t) }, {}, first.dataDir);
        await waitFor('the agent to report the refusal', async () =>
          general.logs.find((l) => l.level === 'error' && /enrolling again failed/.test(l.msg)),
        );
        const refusal = general.logs.find((l) => /enrolling again failed/.test(l.msg))!;
        assert.match(
          String(refusal.fields?.error),
          /409.*held by node .*muster token create --name lc-expired/,
        );
        await general.stop();
        assert.equal(general.enrolled.length, 0);

        const again = startAgent(
          sandbox,
          { ...base, token: await token(t, { name: 'lc-expired' }) },
          {},
          first.dataDir,
        );
        await waitFor('the agent to report again', async () => (again.acks.length > 0 ? true : undefined));
        assert.equal(again.enrolled.length, 1);
        assert.equal(again.enrolled[0]!.name, 'lc-expired');
        assert.equal(again.enrolled[0]!.nodeId, old.id, 'the same node');
        assert.notEqual(again.enrolled[0]!.keyPem, first.enrolled[0]!.keyPem, 'a fresh key');
        assert.ok(again.logs.some((l) => /stored identity has expired; enrolling again/.test(l.msg)));
        const named = await nodesNamed(t, 'lc-expired');
        assert.equal(named.length, 1, 'one node under the name, never two');
        assert.equal(named[0]!.id, old.id);
        assert.equal(named[0]!.profile, 'web');
        assert.deepEqual(named[0]!.labels, { rack: 'r1' });
        // Its status depends on this machine's load; what matters is that it reports as itself.
        assert.notEqual(named[0]!.status, 'decommissioned');
        assert.ok(named[0]!.lastSeenAt);
        await again.stop();
      } finally {
        await t.close();
      }
    });

    test('decommissioned while it held a valid certificate: with a new token it enrolls again under its name', async () => {
      const t = await startInProcessServer(sandbox, dialect, { 'heartbeat-interval': '1s' });
      try {
        const base = {
          server: new URL(t.server.agentUrl),
          caPin: t.server.identity.ca.pin,
          rootPin: t.server.rootPin,
          name: 'lc-revoked',
        };
        const first = startAgent(sandbox, { ...base, token: await token(t) });
        await waitFor('the agent to report', async () => (first.acks.length > 0 ? true : undefined));
        await first.stop();
        const oldId = first.enrolled[0]!.nodeId;
        assert.equal((await t.admin('DELETE', `/v1/nodes/${oldId}`)).status, 204);

        const again = startAgent(sandbox, { ...base, token: await token(t) }, {}, first.dataDir);
        await waitFor('the agent to enroll again and report', async () =>
          again.acks.some((a) => a.nodeId !== oldId) ? true : undefined,
        );
        assert.ok(again.logs.some((l) => l.level === 'error' && /decommissioned or revoked/.test(l.msg)));
        assert.ok(again.logs.some((l) => l.msg === 'enrolled again'));
        const [current] = await nodesNamed(t, 'lc-revoked');
        assert.ok(current && current.id !== oldId);
        await again.stop();
      } finally {
        await t.close();
      }
    });
  });
}
