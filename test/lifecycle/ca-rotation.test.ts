import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { loadIdentity } from '@muster/agent';
import type { CaStatus, NodeView, TokenCreated } from '@muster/proto';
import {
  type AgentRun,
  type InProcessServer,
  startAgent,
  startInProcessServer,
} from '../support/in-process.js';
import { waitFor } from '../support/processes.js';
import { dialects, Sandbox } from '../support/sandbox.js';

const NAMES = ['rot-1', 'rot-2', 'rot-3', 'rot-4'];

const issuedBy = (pem: string, caPem: string) => {
  const ca = new X509Certificate(caPem);
  const cert = new X509Certificate(pem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
};

const problems = (run: AgentRun, level: Array<'warn' | 'error'>) =>
  run.logs.filter((l) => (level as string[]).includes(l.level));

/** How many heartbeats the server stored for the node (one telemetry point each). */
async function storedHeartbeats(t: InProcessServer, name: string): Promise<number> {
  const node = (await t.admin('GET', `/v1/nodes/${name}`)).json as NodeView;
  const row = await t.server.store.db
    .selectFrom('telemetry_raw')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('node_id', '=', node.id)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

for (const dialect of dialects()) {
  describe(`the fleet CA rotates under running agents (${dialect})`, () => {
    const sandbox = new Sandbox();
    after(() => sandbox.cleanup());

    test('every agent moves to the new root on its own and keeps heartbeating; after finish they connect to the new server certificate', async () => {
      const t = await startInProcessServer(sandbox, dialect, {
        'cert-lifetime': '1h',
        'heartbeat-interval': '1s',
      });
      const runs: AgentRun[] = [];
      try {
        const token = (await t.admin('POST', '/v1/tokens', { uses: NAMES.length })).json as TokenCreated;
        const oldCa = t.server.identity.ca;
        for (const name of NAMES) {
          runs.push(
            startAgent(sandbox, {
              server: new URL(t.server.agentUrl),
              caPin: oldCa.pin,
              rootPin: t.server.rootPin,
              token: token.secret,
              name,
            }),
          );
        }
        await waitFor('every agent to report twice', async () =>
          runs.every((r) => r.acks.length >= 2) ? true : undefined,
        );

        assert.equal((await t.admin('POST', '/v1/ca/rotate')).status, 201);
        const newCa = t.server.identity.nextCa!;
        // Nobody touches a host: the agents hear of the rotation in their heartbeat answers.
        const moved = await waitFor(
          'every node to be on the new root',
          async () => {
            const status = (await t.admin('GET', '/v1/ca')).json as CaStatus;
            return status.rotation?.nodesOnRetiring === 0 && status.nodes.onThisCa === NAMES.length
              ? status
              : undefined;
          },
          { timeoutMs: 30_000 },
        );
        assert.equal(moved.nodes.active, NAMES.length);
        for (const run of runs) {
          assert.equal(run.enrolled.length, 1, 'never restarted or enrolled again');
          assert.equal(run.renewed.length, 1, 'renewed once, onto the new root');
          const stored = await loadIdentity(run.dataDir);
          assert.ok(stored && issuedBy(stored.certPem, newCa.pem));
          assert.equal(stored.caPem, `${oldCa.pem.trim()}\n${newCa.pem.trim()}\n`, 'trusts both roots');
          assert.deepEqual(problems(run, ['warn', 'error']), [], 'no heartbeat or renewal failed');
        }

        const beforeFinish = runs.map((r) => r.acks.length);
        const finished = await t.admin('POST', '/v1/ca/finish', {});
        assert.equal(finished.status, 200, JSON.stringify(finished.json));
        for (const run of runs) assert.deepEqual(problems(run, ['warn', 'error']), []);

        // New connections meet the server's certificate from the new root: cut them all and the
        // running agents reconnect with the bundle they installed at renewal.
        for (const name of NAMES) {
          const node = (await t.admin('GET', `/v1/nodes/${name}`)).json as NodeView;
          t.server.app.connections.cut(node.id);
        }
        await waitFor('every agent to report three more times after the finish', async () =>
          runs.every((r, i) => r.acks.length >= beforeFinish[i]! + 3) ? true : undefined,
        );
        await Promise.all(runs.map((r) => r.stop()));
        for (const [i, run] of runs.entries()) {
          assert.deepEqual(problems(run, ['error']), [], `${NAMES[i]}: nothing refused`);
          // Every heartbeat the agent saw answered, the server kept: none was lost. The server may
          // hold one or two more: a heartbeat in flight when the connections were cut, or when the
          // agent stopped, is stored though its answer never reaches the agent.
          const stored = await storedHeartbeats(t, NAMES[i]!);
          assert.ok(
            stored >= run.acks.length && stored <= run.acks.length + 2,
            `${NAMES[i]}: the server stored ${stored} heartbeats, the agent saw ${run.acks.length} answered`,
          );
        }
      } finally {
        await Promise.all(runs.map((r) => r.stop()));
        await t.close();
      }
    });
  });
}
