import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dialects, startTestServer, type TestServer } from '../../testing/harness.js';
import { eventOf, withEvents } from './recorder.js';

for (const dialect of dialects()) {
  describe(`decisions become events atomically (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    const decision = {
      kind: 'node.decommissioned',
      actor: 'admin',
      subject: 'node:n-1',
      data: { name: 'web-1' },
    };
    const counts = async () => ({
      ledger: await t.server.app.ledger.size(),
      events: (await t.admin('GET', '/v1/events?limit=1000')).json.items.length as number,
    });

    test('a change that fails after its decision leaves neither a ledger entry nor an event', async () => {
      const { ledger, events } = t.server.app;
      const before = await counts();
      await assert.rejects(
        t.server.store.write(async (trx) => {
          await withEvents(ledger.recorder(), events).record(trx, decision);
          throw new Error('the change itself fails');
        }),
        /the change itself fails/,
      );
      assert.deepEqual(await counts(), before);
    });

    test('an event that cannot be written undoes the decision with it', async () => {
      const { ledger } = t.server.app;
      const before = await counts();
      const broken = {
        append: async () => {
          throw new Error('events table unavailable');
        },
      };
      await assert.rejects(
        t.server.store.write((trx) => withEvents(ledger.recorder(), broken).record(trx, decision)),
        /events table unavailable/,
      );
      assert.deepEqual(await counts(), before);
    });

    test('the event names the node of a node decision, and keeps the subject', () => {
      assert.deepEqual(eventOf(decision), {
        kind: 'node.decommissioned',
        nodeId: 'n-1',
        actor: 'admin',
        severity: 'warning',
        data: { name: 'web-1', subject: 'node:n-1' },
      });
      assert.equal(
        eventOf({ ...decision, kind: 'security.superseded_certificate_used' }).severity,
        'critical',
      );
      assert.equal(eventOf({ ...decision, subject: 'token:t-1' }).nodeId, null);
    });
  });
}
