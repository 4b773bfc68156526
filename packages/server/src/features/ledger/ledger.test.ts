import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  leafHash,
  openCheckpoint,
  parseVerifierKey,
  type Verifier,
  verifyConsistency,
  verifyExport,
  verifyInclusion,
} from '@muster/proto';
import pg from 'pg';
import {
  createToken,
  dialects,
  enrollAgent,
  startReplicas,
  startTestServer,
  type TestServer,
} from '../../testing/harness.js';

const b64 = (s: string) => Buffer.from(s, 'base64');

async function verifier(t: TestServer): Promise<Verifier> {
  const key = await t.admin('GET', '/v1/ledger/key');
  assert.equal(key.status, 200);
  return parseVerifierKey(key.json.vkey);
}

async function signedCheckpoint(t: TestServer, v: Verifier) {
  const res = await t.admin('GET', '/v1/ledger/checkpoint');
  assert.equal(res.status, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  return { note: res.body, ...openCheckpoint(res.body, v) };
}

/** An export built through the API, line by line, as `muster ledger export` writes it. */
async function exportLines(t: TestServer): Promise<string[]> {
  const key = await t.admin('GET', '/v1/ledger/key');
  const cp = await signedCheckpoint(t, parseVerifierKey(key.json.vkey));
  const lines: string[] = [];
  const leaves: Buffer[] = [];
  for (let start = 0; start < cp.size; ) {
    const page = await t.admin('GET', `/v1/ledger/entries?start=${start}&end=${cp.size}`);
    for (const e of page.json.entries) {
      lines.push(e.entry);
      leaves.push(b64(e.leafHash));
    }
    start += page.json.entries.length;
  }
  return [
    JSON.stringify({
      vkey: key.json.vkey,
      checkpoint: cp.note,
      leafHashes: Buffer.concat(leaves).toString('base64'),
    }),
    ...lines,
  ];
}

/** Calls `fn` until `done` accepts its answer (at most 40 times, 50 ms apart); returns the last answer. */
async function until<T>(fn: () => Promise<T>, done: (r: T) => boolean): Promise<T> {
  let last = await fn();
  for (let i = 0; i < 40 && !done(last); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = await fn();
  }
  return last;
}

async function* iterate(lines: string[]) {
  yield* lines;
}

for (const dialect of dialects()) {
  describe(`the transparency ledger (${dialect})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(dialect);
    });
    after(async () => {
      await t.close();
    });

    test('every decision is an entry, in order, and every entry is provably in the signed log', async () => {
      const v = await verifier(t);
      const empty = await signedCheckpoint(t, v);
      assert.equal(empty.size, 0);

      await createToken(t, { uses: 2 });
      const early = await signedCheckpoint(t, v);
      const agent = await enrollAgent(t, { name: 'ledger-1' });
      const tokens = await t.admin('GET', '/v1/tokens');
      await t.admin('DELETE', `/v1/tokens/${tokens.json.items[0].id}`);
      assert.equal((await t.admin('DELETE', `/v1/nodes/${agent.nodeId}`)).status, 204);
      agent.agent.destroy();

      const cp = await signedCheckpoint(t, v);
      const page = await t.admin('GET', `/v1/ledger/entries?start=0&end=${cp.size}`);
      const entries = page.json.entries.map((e: { entry: string }) => JSON.parse(e.entry));
      assert.deepEqual(
        entries.map((e: { seq: number }) => e.seq),
        entries.map((_: unknown, i: number) => i),
        'seq is contiguous from 0',
      );
      const kinds = entries.map((e: { kind: string }) => e.kind);
      for (const kind of ['token.created', 'node.enrolled', 'token.revoked', 'node.decommissioned']) {
        assert.ok(kinds.includes(kind), `${kind} is in the ledger`);
      }
      const enrolled = entries.find((e: { kind: string }) => e.kind === 'node.enrolled');
      assert.equal(enrolled.subject, `node:${agent.nodeId}`);
      assert.equal(enrolled.v, 1);

      for (const e of page.json.entries) {
        assert.deepEqual(leafHash(e.entry), b64(e.leafHash), 'the stored leaf hash is the hash of the entry');
        const proof = await t.admin('GET', `/v1/ledger/proof/inclusion?seq=${e.seq}&size=${cp.size}`);
        assert.ok(
          verifyInclusion(e.seq, cp.size, leafHash(e.entry), proof.json.hashes.map(b64), cp.root),
          `seq ${e.seq}`,
        );
      }
      const consistency = await t.admin(
        'GET',
        `/v1/ledger/proof/consistency?from=${early.size}&to=${cp.size}`,
      );
      assert.ok(
        verifyConsistency(early.size, cp.size, consistency.json.hashes.map(b64), early.root, cp.root),
      );

      const newest = await t.admin('GET', '/v1/ledger/decisions?kind=node.decommissioned&limit=5');
      assert.equal(newest.json.items[0].subject, `node:${agent.nodeId}`);
      assert.deepEqual(
        await verifyExport(
          iterate(await exportLines(t)),
          v.name ? (await t.admin('GET', '/v1/ledger/key')).json.vkey : undefined,
        ),
        {
          ok: true,
          size: cp.size,
        },
      );
    });

    test('bad proof requests are refused plainly', async () => {
      const size = (await signedCheckpoint(t, await verifier(t))).size;
      const cases = [
        [`/v1/ledger/proof/inclusion?seq=${size}&size=${size}`, 400],
        [`/v1/ledger/proof/inclusion?seq=0&size=${size + 5}`, 404],
        ['/v1/ledger/proof/inclusion?seq=-1', 400],
        ['/v1/ledger/proof/consistency?from=0&to=1', 400],
        [`/v1/ledger/proof/consistency?from=${size + 1}`, 400],
        ['/v1/ledger/entries?start=abc', 400],
        [`/v1/ledger/entries?start=${size + 10}`, 400],
      ] as const;
      for (const [path, status] of cases) assert.equal((await t.admin('GET', path)).status, status, path);
    });

    test("an entry edited, deleted, reordered or appended behind the log's back: verify names the first bad seq", async () => {
      for (let i = 0; i < 6; i++) await createToken(t);
      const vkey = (await t.admin('GET', '/v1/ledger/key')).json.vkey as string;
      const db = t.server.store.db;
      const size = (await signedCheckpoint(t, parseVerifierKey(vkey))).size;
      const k = size - 4;
      const original = await db
        .selectFrom('ledger_entries')
        .select(['seq', 'entry'])
        .where('seq', '>=', k)
        .orderBy('seq')
        .execute();
      const restore = async () => {
        for (const row of original) {
          await db.deleteFrom('ledger_entries').where('seq', '=', row.seq).execute();
          await db
            .insertInto('ledger_entries')
            .values({ ...row, ts: 0, kind: 'x', subject: 'x' })
            .execute();
        }
      };

      // edited: one field of entry k changed in place
      await db
        .updateTable('ledger_entries')
        .set({ entry: original[0]!.entry.replace('"user:admin"', '"user:mallory"') })
        .where('seq', '=', k)
        .execute();
      let result = await verifyExport(iterate(await exportLines(t)), vkey);
      assert.equal(result.ok, false);
      assert.equal(result.firstBadSeq, k);
      await restore();
      assert.equal((await verifyExport(iterate(await exportLines(t)), vkey)).ok, true);

      // deleted: entry k+1 removed
      await db
        .deleteFrom('ledger_entries')
        .where('seq', '=', k + 1)
        .execute();
      result = await verifyExport(iterate(await exportLines(t)), vkey);
      assert.deepEqual([result.ok, result.firstBadSeq], [false, k + 1]);
      await restore();

      // reordered: entries k+1 and k+2 swap their texts
      await db
        .updateTable('ledger_entries')
        .set({ entry: original[2]!.entry })
        .where('seq', '=', k + 1)
        .execute();
      await db
        .updateTable('ledger_entries')
        .set({ entry: original[1]!.entry })
        .where('seq', '=', k + 2)
        .execute();
      result = await verifyExport(iterate(await exportLines(t)), vkey);
      assert.deepEqual([result.ok, result.firstBadSeq], [false, k + 1]);
      await restore();

      // appended: an entry past the signed checkpoint, in the export
      const lines = await exportLines(t);
      const forged = JSON.parse(lines.at(-1)!);
      forged.seq = size;
      result = await verifyExport(iterate([...lines, JSON.stringify(forged)]), vkey);
      assert.deepEqual([result.ok, result.firstBadSeq], [false, size]);

      // a checkpoint signed by another key is refused outright
      const other = vkey.replace(/\+[0-9a-f]{8}\+/, '+00000000+');
      assert.equal((await verifyExport(iterate(lines), other)).ok, false);
    });
  });
}

if (dialects().includes('postgres')) {
  describe('the ledger across replicas and outages (postgres)', () => {
    let a: TestServer;
    let b: TestServer;
    let replicas: Awaited<ReturnType<typeof startReplicas>>;
    before(async () => {
      replicas = await startReplicas('postgres');
      ({ a, b } = replicas);
    });
    after(async () => {
      await replicas.close();
    });

    test('two replicas appending at once make one linear log', async () => {
      await Promise.all(Array.from({ length: 30 }, (_, i) => createToken(i % 2 ? a : b)));
      const vkey = (await a.admin('GET', '/v1/ledger/key')).json.vkey;
      const result = await verifyExport(iterate(await exportLines(b)), vkey);
      assert.deepEqual(result, { ok: true, size: 30 });
    });

    test('a store that refuses writes: changes answer 503 and change nothing; reads work; recovery is automatic', async () => {
      const name = new URL(a.db).pathname.slice(1);
      const admin = new pg.Client({ connectionString: process.env.MUSTER_TEST_PG_URL });
      await admin.connect();
      const cutOff = async (readOnly: boolean) => {
        await admin.query(
          `ALTER DATABASE ${name} SET default_transaction_read_only = ${readOnly ? 'on' : 'off'}`,
        );
        await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
      };
      try {
        const before = (await a.admin('GET', '/v1/tokens')).json.items.length;
        await cutOff(true);
        let refused = await a.admin('POST', '/v1/tokens', {});
        if (refused.status !== 503) refused = await a.admin('POST', '/v1/tokens', {}); // the first may meet a dying connection
        assert.equal(refused.status, 503);
        assert.equal(refused.json.code, 'store_unavailable');
        // Pooled connections cut under the server fail one request each (503) until all are
        // replaced; reads, then writes, come back on their own within a bounded time.
        const read = await until(
          () => a.admin('GET', '/v1/tokens'),
          (r) => r.status === 200,
        );
        assert.equal(read.json.items.length, before, 'nothing was changed');
        await cutOff(false);
        const ok = await until(
          () => a.admin('POST', '/v1/tokens', {}),
          (r) => r.status === 201,
        );
        assert.equal(ok.status, 201);
      } finally {
        await admin.query(`ALTER DATABASE ${name} RESET default_transaction_read_only`).catch(() => {});
        await admin.end();
      }
    });
  });
}
