import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { NodeView } from '@muster/proto';
import { ConflictError, NotFoundError } from '../../errors.js';
import { onlyMatch } from '../../store/id-prefix.js';
import {
  type Dialect,
  dialects,
  enrollAgent,
  startTestServer,
  type TestAgent,
  type TestServer,
} from '../../testing/harness.js';

for (const dialect of dialects() as Dialect[]) {
  // `muster nodes show 3f2a` as `muster commands show 3f2a` does: the first characters of the id
  // that `nodes ls --json` shows are enough when only one node's id starts with them.
  describe(`a node found by a prefix of its id (${dialect})`, () => {
    let t: TestServer;
    let web: TestAgent;
    let db: TestAgent;
    before(async () => {
      t = await startTestServer(dialect);
      web = await enrollAgent(t, { name: 'prefix-web' });
      db = await enrollAgent(t, { name: 'prefix-db' });
    });
    after(() => t?.close());

    /** The shortest prefix of `id` (at least 4 characters) that the other node's id does not share. */
    function uniquePrefix(id: string, other: string): string {
      let n = 4;
      while (other.startsWith(id.slice(0, n))) n++;
      return id.slice(0, n);
    }

    test('a unique prefix finds its node, to show it and to rotate it; names and whole ids still do', async () => {
      for (const [asked, found] of [
        [uniquePrefix(web.nodeId, db.nodeId), web],
        [uniquePrefix(db.nodeId, web.nodeId), db],
        [web.nodeId, web],
        ['prefix-db', db],
      ] as const) {
        const res = await t.admin('GET', `/v1/nodes/${asked}`);
        assert.equal(res.status, 200, `${asked}: ${res.body}`);
        assert.equal((res.json as NodeView).id, found.nodeId, asked);
      }
      const rotate = await t.admin('POST', `/v1/nodes/${uniquePrefix(db.nodeId, web.nodeId)}/rotate`);
      assert.equal(rotate.status, 202, rotate.body);
      assert.equal((rotate.json as NodeView).id, db.nodeId);
    });

    test('a prefix of no node, or one too short to mean anything, is 404 and changes nothing', async () => {
      const unused = web.nodeId[0] === 'f' ? '0000' : 'ffff';
      for (const asked of [unused, web.nodeId.slice(0, 3), `${web.nodeId.slice(0, 6)}zz`]) {
        const res = await t.admin('GET', `/v1/nodes/${asked}`);
        assert.equal(res.status, 404, `${asked}: ${res.body}`);
      }
      const gone = await t.admin('DELETE', `/v1/nodes/${unused}`);
      assert.equal(gone.status, 404);
      const list = (await t.admin('GET', '/v1/nodes')).json as { items: NodeView[] };
      assert.equal(list.items.filter((n) => n.status !== 'decommissioned').length, 2);
    });
  });
}

test('an id prefix several ids start with is refused naming them, none is not found', () => {
  const rows = ['3f2a0001', '3f2a0002', '3f2a0003', '3f2a0004', '3f2a0005', '3f2a0006'].map((id) => ({ id }));
  assert.deepEqual(onlyMatch(rows.slice(0, 1), '3f2a', 'node'), { id: '3f2a0001' });
  assert.throws(() => onlyMatch([], '3f2a', 'node'), NotFoundError);
  assert.throws(
    () => onlyMatch(rows.slice(0, 2), '3f2a', 'node'),
    (err: unknown) =>
      err instanceof ConflictError &&
      err.message === '"3f2a" is the start of several node ids: 3f2a0001, 3f2a0002; give more of it',
  );
  assert.throws(
    () => onlyMatch(rows, '3f2a', 'node'),
    (err: unknown) => err instanceof ConflictError && /3f2a0005, …; give more of it$/.test(err.message),
  );
});
