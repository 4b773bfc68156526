import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { loadIdentity } from '@muster/agent';
import type { NodeView, TokenCreated } from '@muster/proto';
import {
  type AgentRun,
  type InProcessServer,
  startAgent,
  startInProcessServer,
} from '../support/in-process.js';
import { waitFor } from '../support/processes.js';
import { dialects, Sandbox } from '../support/sandbox.js';

const MIN = 60_000;
const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase();

async function token(t: InProcessServer, body: object = {}): Promise<string> {
  const res = await t.admin('POST', '/v1/tokens', body);
  assert.equal(res.status, 201);
  return (res.json as TokenCreated).secret;
}

async function node(t: InProcessServer, name: string): Promise<NodeView> {
  const res = await t.admin('GET', `/v1/nodes/${name}`);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json as NodeView;
}

/** When each renewal of the node was recorded in the ledger, oldest first, in server time. */
async function renewalTimes(t: InProcessServer, nodeId: string): Promise<number[]> {
  const res = await t.admin(
    'GET',
    `/v1/ledger/decisions?subject=node:${nodeId}&kind=node.renewed&limit=1000`,
  );
  assert.equal(res.status, 200);
  return (res.json.items as Array<{ ts: string }>).map((e) => Date.parse(e.ts)).reverse();
}

const problems = (run: AgentRun) => run.logs.filter((l) => l.level === 'warn' || l.level === 'error');

for (const dialect of dialects()) {
  describe(`agents renew their certificates (${dialect})`, () => {
    const sandbox = new Sandbox();
    after(() => sandbox.cleanup());

    test('a 1-minute certificate is renewed every few seconds without a restart or a lost heartbeat, whatever the host clock says', async () => {
      const t = await startInProcessServer(sandbox, dialect, {
        'cert-lifetime': '1m',
        // Renewing every two seconds is this test's doing; the default allows 6 a minute.
        'renew-rate': '100',
        'heartbeat-interval': '1s',
      });
      const agents: Array<{ name: string; skew: number; run: AgentRun }> = [];
      try {
        const secret = await token(t, { uses: 5 });
        const skews: Array<[string, number]> = [
          ['lc-exact', 0],
          ['lc-ahead-5m', 5 * MIN],
          ['lc-behind-5m', -5 * MIN],
          ['lc-ahead-1h', 60 * MIN],
          ['lc-behind-1h', -60 * MIN],
        ];
        for (const [name, skew] of skews) {
          const run = startAgent(
            sandbox,
            {
              server: new URL(t.server.agentUrl),
              caPin: t.server.identity.ca.pin,
              rootPin: t.server.rootPin,
              token: secret,
              name,
              // Renew after about 2 s of a 60 s lifetime.
              renewFraction: 0.03,
            },
            { localClock: () => Date.now() + skew },
          );
          agents.push({ name, skew, run });
        }
        await waitFor('every agent to renew twice', async () =>
          agents.every((a) => a.run.renewed.length >= 2) ? true : undefined,
        );
        // Stopped, each agent's hooks and its files agree: nothing is half-written.
        await Promise.all(agents.map((a) => a.run.stop()));
        for (const { name, skew, run } of agents) {
          assert.deepEqual(problems(run), [], `${name}: no heartbeat or renewal failed`);
          assert.equal(run.enrolled.length, 1, `${name}: enrolled once, never restarted`);
          const serials = run.renewed.map((r) => serialOf(r.certPem));
          // The agent swapped each new certificate in: the server saw it used and made it current.
          // The newest may still be pending if the agent stopped before its next heartbeat.
          const shown = await node(t, name);
          assert.ok(serials.includes(shown.cert.serial), `${name} reports on a renewed certificate`);
          if (shown.cert.serial !== serials.at(-1)) assert.equal(shown.cert.pending?.serial, serials.at(-1));
          // Written to disk atomically, with the key it belongs to.
          const stored = await loadIdentity(run.dataDir);
          assert.ok(stored);
          assert.equal(stored.certPem, run.renewed.at(-1)!.certPem);
          assert.equal(stored.keyPem, run.enrolled[0]!.keyPem, 'same key unless asked for a new one');
          // Never in a loop: renewals, in server time, are never less than half a second apart.
          const times = await renewalTimes(t, shown.id);
          assert.ok(times.length >= 2);
          for (let i = 1; i < times.length; i++) {
            assert.ok(
              times[i]! - times[i - 1]! >= 500,
              `${name} renewed ${times[i]! - times[i - 1]!} ms apart`,
            );
          }
          const skewReasons = shown.reasons.filter((r) => r.startsWith('clock skew'));
          if (Math.abs(skew) >= 60 * MIN) {
            assert.equal(skewReasons.length, 1, `${name}: ${shown.reasons.join('; ')}`);
            assert.match(
              skewReasons[0]!,
              skew > 0 ? /60 min ahead of the server's/ : /60 min behind the server's/,
            );
          }
          if (skew === 0) assert.deepEqual(skewReasons, []);
        }
      } finally {
        await Promise.all(agents.map((a) => a.run.stop()));
        await t.close();
      }
    });

    test('muster nodes rotate moves a running agent onto a fresh key at its next heartbeat', async () => {
      const t = await startInProcessServer(sandbox, dialect, {
        'cert-lifetime': '1h',
        'heartbeat-interval': '1s',
      });
      const run = startAgent(sandbox, {
        server: new URL(t.server.agentUrl),
        caPin: t.server.identity.ca.pin,
        rootPin: t.server.rootPin,
        token: await token(t),
        name: 'lc-rotate',
      });
      try {
        await waitFor('the agent to report', async () => (run.acks.length > 0 ? true : undefined));
        const asked = await t.admin('POST', '/v1/nodes/lc-rotate/rotate');
        assert.equal(asked.status, 202);
        await waitFor('the agent to renew', async () => (run.renewed.length > 0 ? true : undefined));
        const renewed = run.renewed[0]!;
        assert.notEqual(renewed.keyPem, run.enrolled[0]!.keyPem);
        assert.ok(new X509Certificate(renewed.certPem).checkPrivateKey(createPrivateKey(renewed.keyPem)));
        const shown = await waitFor('the node to be on its new key', async () => {
          const view = await node(t, 'lc-rotate');
          return view.cert.serial === serialOf(renewed.certPem) ? view : undefined;
        });
        assert.equal(shown.cert.rotationRequestedAt, null);
        assert.equal((await loadIdentity(run.dataDir))?.keyPem, renewed.keyPem);
        assert.deepEqual(problems(run), []);
      } finally {
        await run.stop();
        await t.close();
      }
    });
  });
}
