import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import {
  dialects,
  enrollAgent,
  httpJson,
  startReplicas,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';

/** Resolves when the socket is closed, whether that already happened or not. */
async function closed(socket: TLSSocket): Promise<void> {
  if (socket.closed) return;
  await once(socket, 'close');
}

for (const dialect of dialects()) {
  describe(`decommissioning a node (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test('cuts the keep-alive connection the node holds, and its next heartbeat gets 401', async () => {
      const agent = await enrollAgent(t, { name: 'gone-1' });
      try {
        assert.equal((await agent.heartbeat()).status, 202);
        assert.equal((await agent.heartbeat()).status, 202);
        assert.equal(agent.sockets.length, 1, 'both heartbeats went over one keep-alive connection');
        const [socket] = agent.sockets;
        assert.equal(socket!.closed, false);

        assert.equal((await t.admin('DELETE', `/v1/nodes/${agent.nodeId}`)).status, 204);
        await closed(socket!);
        assert.equal(t.server.app.connections.size, 0);

        const refused = await agent.heartbeat();
        assertProblem(refused, 401, 'identity_revoked');
        assert.equal(agent.sockets.length, 2, 'the refused heartbeat had to open a new connection');

        const shown = await t.admin('GET', `/v1/nodes/${agent.nodeId}`);
        assert.equal(shown.json.status, 'decommissioned');
        assert.match(shown.json.reasons[0], /^decommissioned /);
        assert.equal(shown.json.decommissionedAt, new Date(t.clock.now()).toISOString());
        const active = await t.admin('GET', '/v1/nodes');
        assert.ok(!active.json.items.some((n: { id: string }) => n.id === agent.nodeId));
        const listed = await t.admin('GET', '/v1/nodes?status=decommissioned');
        assert.ok(listed.json.items.some((n: { id: string }) => n.id === agent.nodeId));
      } finally {
        agent.agent.destroy();
      }
    });

    test('decommissioning twice is fine; an unknown node is a 404 problem', async () => {
      const agent = await enrollAgent(t);
      agent.agent.destroy();
      assert.equal((await t.admin('DELETE', `/v1/nodes/${agent.nodeId}`)).status, 204);
      assert.equal((await t.admin('DELETE', `/v1/nodes/${agent.nodeId}`)).status, 204);
      assertProblem(
        await t.admin('DELETE', '/v1/nodes/00000000-0000-4000-8000-000000000000'),
        404,
        'not_found',
      );
      assertProblem(await t.admin('DELETE', '/v1/nodes/no-such-node'), 404, 'not_found');
    });

    test('by name, it reaches the node holding the name now, not one that held it before', async () => {
      const old = await enrollAgent(t, { name: 'reused-1' });
      old.agent.destroy();
      assert.equal((await t.admin('DELETE', '/v1/nodes/reused-1')).status, 204);
      const current = await enrollAgent(t, { name: 'reused-1' });
      try {
        assert.equal((await current.heartbeat()).status, 202);
        assert.equal((await t.admin('GET', '/v1/nodes/reused-1')).json.id, current.nodeId);
        assert.equal((await t.admin('DELETE', '/v1/nodes/reused-1')).status, 204);
        await closed(current.sockets[0]!);
        assertProblem(await current.heartbeat(), 401, 'identity_revoked');
        assert.equal((await t.admin('GET', `/v1/nodes/${current.nodeId}`)).json.status, 'decommissioned');
      } finally {
        current.agent.destroy();
      }
    });
  });

  describe(`decommissioning through another replica (${dialect})`, () => {
    let a: TestServer;
    let b: TestServer;
    let replicas: Awaited<ReturnType<typeof startReplicas>>;
    before(async () => {
      replicas = await startReplicas(dialect);
      ({ a, b } = replicas);
    });
    after(async () => {
      await replicas.close();
    });

    test('the replica holding the connection refuses the next heartbeat on it with 401', async () => {
      const agent = await enrollAgent(a, { name: 'far-1' });
      try {
        assert.equal((await agent.heartbeat()).status, 202);
        assert.equal(agent.sockets.length, 1);

        // Through B's real admin listener: A hears nothing of it and keeps the connection open.
        const res = await httpJson(`${b.server.adminUrl}/v1/nodes/${agent.nodeId}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${b.server.identity.adminToken}` },
        });
        assert.equal(res.status, 204);
        assert.equal(agent.sockets[0]!.closed, false);

        assertProblem(await agent.heartbeat(), 401, 'identity_revoked');
        assert.equal(agent.sockets.length, 1, 'the refusal came over the connection opened before');
        assert.equal((await a.admin('GET', `/v1/nodes/${agent.nodeId}`)).json.status, 'decommissioned');
      } finally {
        agent.agent.destroy();
      }
    });
  });
}
