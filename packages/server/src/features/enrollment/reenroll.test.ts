import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createToken,
  decisionsAbout,
  dialects,
  enrollAgent,
  postEnroll,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';

const HOUR = 3_600_000;

for (const dialect of dialects()) {
  describe(`enrolling again under a name (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect, { settings: { 'cert-lifetime': '1h' } });
    });
    after(async () => {
      await t.close();
    });

    /**
     * Certificates are checked against the real time at every TLS handshake: to make one that
     * has expired, the server's clock is put two hours back while it is issued.
     */
    const inThePast = () => t.clock.set(Date.now() - 2 * HOUR);
    const backToNow = () => t.clock.set(Date.now());
    const usesLeft = async (id: string) =>
      (await t.admin('GET', '/v1/tokens')).json.items.find((item: { id: string }) => item.id === id)
        .usesLeft as number;

    test('a general token never takes a held name, even once its certificate has expired; each refusal is a security event', async () => {
      inThePast();
      const holder = await enrollAgent(t, { name: 'held-1' });
      holder.agent.destroy();
      const general = await t.admin('POST', '/v1/tokens', { uses: 5, ttlSec: 86_400 });

      const refused = assertProblem(
        await postEnroll(t, { token: general.json.secret, name: 'held-1' }),
        409,
        'name_taken',
      );
      assert.match(refused.detail, new RegExp(`held by node ${holder.nodeId}`));
      assert.match(refused.detail, /muster token create --name held-1/);
      assert.match(refused.detail, /decommission/);

      backToNow();
      assertProblem(await postEnroll(t, { token: general.json.secret, name: 'held-1' }), 409, 'name_taken');
      assert.equal(await usesLeft(general.json.id), 5, 'a refusal uses nothing up');

      // Name-targeted lookups still find the node that holds the name.
      const shown = await t.admin('GET', '/v1/nodes/held-1');
      assert.equal(shown.json.id, holder.nodeId);
      assert.notEqual(shown.json.status, 'decommissioned');
      const refusals = (await decisionsAbout(t, `node:${holder.nodeId}`)).filter(
        (d) => d.kind === 'security.name_takeover_refused',
      );
      assert.deepEqual(
        refusals.map((d) => [d.actor, d.data.name, d.data.certificateExpired]),
        [
          [`token:${general.json.id}`, 'held-1', false],
          [`token:${general.json.id}`, 'held-1', true],
        ],
      );
      const events = await t.admin(
        'GET',
        `/v1/events?kind=security.name_takeover_refused&node=${holder.nodeId}`,
      );
      assert.equal(events.json.items.length, 2);
      assert.equal(events.json.items[0].severity, 'critical');
    });

    test('a token made for the name keeps the node: same id, profile, labels and history; the old certificate is refused', async () => {
      const first = await enrollAgent(t, {
        name: 'again-1',
        token: await createToken(t, { profile: 'web', labels: { env: 'prod', tier: 'front' } }),
      });
      assert.equal((await first.heartbeat()).status, 202);
      const before = (await t.admin('GET', `/v1/nodes/${first.nodeId}`)).json;

      const bound = await t.admin('POST', '/v1/tokens', { name: 'again-1' });
      const second = await enrollAgent(t, { name: 'again-1', token: bound.json.secret });
      assert.equal(second.nodeId, first.nodeId, 'the same node');
      assert.equal(await usesLeft(bound.json.id), 0);

      // The old identity's connection is cut, and it is refused from then on; the new one is the node's.
      const held = first.sockets.at(-1)!;
      if (!held.destroyed) await new Promise((resolve) => held.once('close', resolve));
      assertProblem(await first.heartbeat(), 401, 'identity_revoked');
      assert.equal((await second.heartbeat()).status, 202);
      const after = (await t.admin('GET', '/v1/nodes/again-1')).json;
      assert.equal(after.id, first.nodeId);
      assert.equal(after.profile, 'web');
      assert.deepEqual(after.labels, { env: 'prod', tier: 'front' });
      assert.equal(after.enrolledAt, before.enrolledAt);
      assert.notEqual(after.cert.serial, before.cert.serial);
      assert.equal(after.status, 'ok');
      const nodes = (await t.admin('GET', '/v1/nodes?limit=1000')).json.items.filter(
        (n: { name: string }) => n.name === 'again-1',
      );
      assert.equal(nodes.length, 1, 'no second node under the name');

      const decisions = await decisionsAbout(t, `node:${first.nodeId}`);
      assert.deepEqual(
        decisions.map((d) => d.kind).filter((k) => k === 'node.enrolled'),
        ['node.enrolled', 'node.enrolled'],
        'one history: both enrollments are about the same node',
      );
      const again = decisions.findLast((d) => d.kind === 'node.enrolled')!;
      assert.equal(again.actor, `token:${bound.json.id}`);
      assert.equal(again.data.reenrolled, true);
      assert.equal(again.data.previousSerial, before.cert.serial);
      assert.equal(again.data.serial, after.cert.serial);
      const live = await t.server.store.db
        .selectFrom('certificates')
        .select('serial')
        .where('node_id', '=', first.nodeId)
        .where('revoked_at', 'is', null)
        .execute();
      assert.deepEqual(
        live.map((c) => c.serial),
        [after.cert.serial],
      );
      first.agent.destroy();
      second.agent.destroy();
    });

    test('a token made for the name brings back a node whose certificate expired', async () => {
      inThePast();
      const first = await enrollAgent(t, {
        name: 'again-2',
        token: await createToken(t, { labels: { a: 'b' } }),
      });
      first.agent.destroy();
      backToNow();
      const second = await enrollAgent(t, {
        name: 'again-2',
        token: await createToken(t, { name: 'again-2' }),
      });
      assert.equal(second.nodeId, first.nodeId);
      assert.equal((await second.heartbeat()).status, 202);
      const shown = (await t.admin('GET', '/v1/nodes/again-2')).json;
      assert.deepEqual(shown.labels, { a: 'b' });
      assert.equal(shown.status, 'ok');
      second.agent.destroy();
    });

    test('a decommissioned name enrolls afresh with any token: a new node', async () => {
      const first = await enrollAgent(t, { name: 'again-3' });
      first.agent.destroy();
      assert.equal((await t.admin('DELETE', `/v1/nodes/${first.nodeId}`)).status, 204);
      const second = await enrollAgent(t, { name: 'again-3' });
      assert.notEqual(second.nodeId, first.nodeId);
      second.agent.destroy();
    });
  });
}
