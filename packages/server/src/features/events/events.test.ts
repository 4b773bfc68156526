import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createToken,
  dialects,
  enrollAgent,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';
import { assertProblem } from '../../testing/problems.js';

const DAY = 86_400_000;

for (const dialect of dialects()) {
  describe(`events (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    const note = async (text: string, extra: Record<string, unknown> = {}) => {
      const res = await t.admin('POST', '/v1/events', { kind: 'note', text, ...extra });
      assert.equal(res.status, 201, res.body);
      return res.json;
    };

    test('decisions become events in their transaction: enrollment, tokens, decommission', async () => {
      const created = await t.admin('POST', '/v1/tokens', { name: 'web-1' });
      const agent = await enrollAgent(t, { name: 'web-1', token: created.json.secret });
      agent.agent.destroy();
      assert.equal((await t.admin('DELETE', `/v1/nodes/${agent.nodeId}`)).status, 204);
      const revoked = await t.admin('POST', '/v1/tokens', {});
      assert.equal((await t.admin('DELETE', `/v1/tokens/${revoked.json.id}`)).status, 204);

      const list = await t.admin('GET', '/v1/events?limit=10');
      assert.equal(list.status, 200);
      const kinds = list.json.items.map((e: { kind: string }) => e.kind);
      assert.deepEqual(kinds.slice(0, 5), [
        'token.revoked',
        'token.created',
        'node.decommissioned',
        'node.enrolled',
        'token.created',
      ]);
      const ids = list.json.items.map((e: { id: number }) => e.id);
      assert.deepEqual(
        ids,
        [...ids].sort((a: number, b: number) => b - a),
        'newest first',
      );
      const enrolled = list.json.items.find((e: { kind: string }) => e.kind === 'node.enrolled');
      assert.equal(enrolled.nodeId, agent.nodeId);
      assert.equal(enrolled.severity, 'info');
      assert.equal(enrolled.data.name, 'web-1');
      assert.match(enrolled.ts, /^\d{4}-\d{2}-\d{2}T/);
      const decommissioned = list.json.items.find((e: { kind: string }) => e.kind === 'node.decommissioned');
      assert.equal(decommissioned.severity, 'warning');
      assert.equal(decommissioned.actor, 'user:admin');

      // The node filter takes an id or a name; the kind filter one kind or several.
      for (const node of [agent.nodeId, 'web-1']) {
        const byNode = await t.admin('GET', `/v1/events?node=${node}`);
        assert.deepEqual(
          byNode.json.items.map((e: { kind: string }) => e.kind),
          ['node.decommissioned', 'node.enrolled'],
        );
      }
      const byKind = await t.admin('GET', '/v1/events?kind=token.revoked,node.enrolled');
      assert.deepEqual(
        byKind.json.items.map((e: { kind: string }) => e.kind),
        ['token.revoked', 'node.enrolled'],
      );
    });

    test('operators write notes, incidents, acks, resolutions and tags; bad ones are refused', async () => {
      await createToken(t);
      const agent = await enrollAgent(t);
      agent.agent.destroy();
      const incident = await t.admin('POST', '/v1/events', {
        kind: 'incident',
        text: 'disk filling on the web tier',
        nodeId: agent.nodeId,
      });
      assert.equal(incident.status, 201);
      assert.equal(incident.json.actor, 'user:admin');
      assert.equal(incident.json.severity, 'warning');
      assert.equal(incident.json.nodeId, agent.nodeId);
      const ack = await t.admin('POST', '/v1/events', { kind: 'ack', ref: incident.json.id });
      assert.equal(ack.status, 201);
      assert.equal(ack.json.nodeId, agent.nodeId, 'an ack is about the node of what it answers');
      const resolved = await t.admin('POST', '/v1/events', {
        kind: 'resolve',
        ref: incident.json.id,
        text: 'rotated logs',
      });
      assert.equal(resolved.status, 201);
      assert.deepEqual(resolved.json.data, { text: 'rotated logs', ref: incident.json.id });
      const tag = await t.admin('POST', '/v1/events', { kind: 'tag', tag: 'deploy:v1.2', severity: 'info' });
      assert.equal(tag.status, 201);

      assertProblem(await t.admin('POST', '/v1/events', { kind: 'node.enrolled', text: 'x' }), 400);
      assertProblem(await t.admin('POST', '/v1/events', { kind: 'note', text: 'x'.repeat(4097) }), 400);
      assertProblem(await t.admin('POST', '/v1/events', { kind: 'note', text: 'x', severity: 'panic' }), 400);
      assertProblem(await t.admin('POST', '/v1/events', { kind: 'note', text: 'x', extra: 1 }), 400);
      assertProblem(await t.admin('POST', '/v1/events', { kind: 'tag', tag: 'no spaces allowed' }), 400);
      assertProblem(await t.admin('POST', '/v1/events', { kind: 'note', text: '   ' }), 422, 'text_required');
      assertProblem(await t.admin('POST', '/v1/events', { kind: 'tag' }), 422, 'tag_required');
      assertProblem(await t.admin('POST', '/v1/events', { kind: 'ack' }), 422, 'ref_required');
      assertProblem(
        await t.admin('POST', '/v1/events', { kind: 'note', text: 'x', nodeId: "'; DROP TABLE nodes; --" }),
        422,
        'unknown_node',
      );
      assertProblem(
        await t.admin('POST', '/v1/events', { kind: 'ack', ref: 9_999_999 }),
        422,
        'unknown_event',
      );
      assertProblem(
        await t.admin('POST', '/v1/events', { kind: 'resolve', ref: tag.json.id }),
        422,
        'not_an_incident',
      );
      assert.equal((await t.admin('GET', '/v1/nodes')).status, 200);
    });

    test('bad filters are answered 400 or clamped, never 500', async () => {
      for (let i = 0; i < 3; i++) await note(`filler ${i}`);
      const drop = encodeURIComponent("'; DROP TABLE events; --");
      for (const query of [`kind=${drop}`, `node=${drop}`, `kind=${drop},note`]) {
        const res = await t.admin('GET', `/v1/events?${query}`);
        assert.equal(res.status, 200, `${query}: ${res.body}`);
        assert.ok(res.json.items.every((e: { kind: string }) => e.kind === 'note'));
      }
      assert.equal((await t.admin('GET', `/v1/events?kind=${drop}`)).json.items.length, 0);
      for (const query of [
        'limit=-1',
        'limit=0',
        'limit=abc',
        'limit=1.5',
        `since=${drop}`,
        'since=yesterday',
        'cursor=AAAA',
        `cursor=${drop}`,
        `cursor=${Buffer.from('{"before":-3}').toString('base64url')}`,
        `cursor=${Buffer.from('{"before":3,"x":1}').toString('base64url')}`,
        `cursor=${Buffer.from('{"before":3}').toString('base64url')}x`,
        `kind=${'a,'.repeat(40)}`,
      ]) {
        const res = await t.admin('GET', `/v1/events?${query}`);
        assert.equal(res.status, 400, `${query} answered ${res.status}`);
        assertProblem(res, 400);
      }
      for (const limit of ['1e9', '1e400', '1000000']) {
        const huge = await t.admin('GET', `/v1/events?limit=${limit}`);
        assert.equal(huge.status, 200, `limit=${limit} is read as the maximum`);
        assert.ok(huge.json.items.length > 0 && huge.json.items.length <= 1000);
      }
      // The table is still there and answers.
      assert.ok((await t.admin('GET', '/v1/events')).json.items.length > 0);
    });

    test('cursors page back through history without repeating or skipping', async () => {
      for (let i = 0; i < 7; i++) await note(`page ${i}`);
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const res = await t.admin(
          'GET',
          `/v1/events?kind=note&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        assert.equal(res.status, 200);
        seen.push(...res.json.items.map((e: { id: number }) => e.id));
        cursor = res.json.nextCursor;
      } while (cursor);
      const all = (await t.admin('GET', '/v1/events?kind=note&limit=1000')).json.items.map(
        (e: { id: number }) => e.id,
      );
      assert.deepEqual(seen, all);
      assert.equal(new Set(seen).size, seen.length);
    });

    test('since keeps only events at or after a time', async () => {
      t.clock.advance(60_000);
      const cut = new Date(t.clock.now()).toISOString();
      const fresh = await note('after the cut');
      const res = await t.admin('GET', `/v1/events?since=${encodeURIComponent(cut)}`);
      assert.deepEqual(
        res.json.items.map((e: { id: number }) => e.id),
        [fresh.id],
      );
    });

    test('retention removes old events and remembers where history starts', async () => {
      const old = await note('old news');
      t.clock.advance(8 * DAY);
      const kept = await note('still news');
      const removed = await t.server.app.events.sweep();
      assert.ok(removed >= 1);
      const ids = (await t.admin('GET', '/v1/events?limit=1000')).json.items.map((e: { id: number }) => e.id);
      assert.ok(!ids.includes(old.id));
      assert.ok(ids.includes(kept.id));
      assert.ok((await t.server.app.events.prunedThrough()) >= old.id);
      assert.equal(await t.server.app.events.sweep(), 0, 'a second sweep finds nothing');
    });
  });
}
