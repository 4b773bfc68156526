import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { dialects, enrollAgent, startTestServer, type TestServer } from '../../testing/harness.js';
import { openSse, poll, type SseFrame } from './sse.test-support.js';

const DAY = 86_400_000;

for (const dialect of dialects()) {
  describe(`event stream (${dialect})`, () => {
    let t: TestServer;
    let token: string;
    before(async () => {
      t = await startTestServer(dialect);
      token = t.server.identity.adminToken;
    });
    after(async () => {
      await t.close();
    });

    const note = async (text: string) => {
      const res = await t.admin('POST', '/v1/events', { kind: 'note', text });
      assert.equal(res.status, 201, res.body);
      return res.json as { id: number };
    };
    const notes = (frames: SseFrame[]) =>
      frames.filter((f) => f.event === 'note').map((f) => JSON.parse(f.data).data.text as string);

    test('a new event reaches a connected stream as soon as it commits, named by its kind', async () => {
      const sse = await openSse(t.server.adminUrl, token);
      assert.equal(sse.status, 200);
      await poll(() => sse.comments.includes('connected'));
      const written = await note('live one');
      await sse.until((frames) => frames.length >= 1);
      const [frame] = sse.frames;
      assert.equal(frame!.event, 'note');
      assert.equal(frame!.id, String(written.id));
      const envelope = JSON.parse(frame!.data);
      assert.equal(envelope.id, written.id);
      assert.equal(envelope.actor, 'user:admin');
      assert.equal(envelope.severity, 'info');
      assert.deepEqual(envelope.data, { text: 'live one' });
      // Decisions arrive the same way.
      await t.admin('POST', '/v1/tokens', {});
      await sse.until((frames) => frames.some((f) => f.event === 'token.created'));
      sse.close();
    });

    test('Last-Event-ID resumes with exactly the missed events, once, then the live ones', async () => {
      const first = await openSse(t.server.adminUrl, token);
      await poll(() => first.comments.includes('connected'));
      await note('seen 1');
      await first.until((frames) => notes(frames).includes('seen 1'));
      const lastSeen = first.frames.at(-1)!.id!;
      first.close();

      for (const text of ['missed 1', 'missed 2', 'missed 3']) await note(text);
      const resumed = await openSse(t.server.adminUrl, token, { lastEventId: lastSeen });
      await resumed.until((frames) => notes(frames).length >= 3);
      await note('live after resume');
      await resumed.until((frames) => notes(frames).includes('live after resume'));
      assert.deepEqual(notes(resumed.frames), ['missed 1', 'missed 2', 'missed 3', 'live after resume']);
      const ids = resumed.frames.map((f) => Number(f.id));
      assert.deepEqual(
        ids,
        [...new Set(ids)].sort((a, b) => a - b),
        'each once, in order',
      );
      assert.ok(ids[0]! > Number(lastSeen));
      resumed.close();

      // Browsers cannot set the header on EventSource; the query parameter does the same.
      const byQuery = await openSse(t.server.adminUrl, token, { query: `?lastEventId=${lastSeen}` });
      await byQuery.until((frames) => notes(frames).length >= 4);
      assert.deepEqual(notes(byQuery.frames), ['missed 1', 'missed 2', 'missed 3', 'live after resume']);
      byQuery.close();
    });

    test('a Last-Event-ID older than retention gets a gap event, then the stream', async () => {
      const lost = await note('about to be forgotten');
      t.clock.advance(8 * DAY);
      await note('kept after the sweep');
      await t.server.app.events.sweep();
      const pruned = await t.server.app.events.prunedThrough();
      assert.ok(pruned >= lost.id);

      const sse = await openSse(t.server.adminUrl, token, { lastEventId: String(lost.id - 1) });
      await sse.until((frames) => notes(frames).includes('kept after the sweep'));
      const [gap, ...rest] = sse.frames;
      assert.equal(gap!.event, 'gap');
      assert.deepEqual(JSON.parse(gap!.data), { lostFrom: lost.id, lostThrough: pruned });
      assert.equal(gap!.id, String(pruned), 'resuming after the gap does not announce it again');
      assert.ok(!notes(rest).includes('about to be forgotten'));
      await note('live after the gap');
      await sse.until((frames) => notes(frames).includes('live after the gap'));
      sse.close();
    });

    test('a stream filtered by kind and node sends only those, also for a node enrolled later', async () => {
      const byKind = await openSse(t.server.adminUrl, token, { query: '?kind=note,incident' });
      const byNode = await openSse(t.server.adminUrl, token, { query: '?node=db-7' });
      const junk = await openSse(t.server.adminUrl, token, {
        query: `?node=${encodeURIComponent("'; DROP TABLE events; --")}`,
      });
      await poll(() => [byKind, byNode, junk].every((c) => c.comments.includes('connected')));
      const agent = await enrollAgent(t, { name: 'db-7' });
      agent.agent.destroy();
      await t.admin('POST', '/v1/events', { kind: 'incident', text: 'db-7 slow', nodeId: agent.nodeId });
      await note('fleet-wide note');
      await byKind.until((frames) => notes(frames).includes('fleet-wide note'));
      assert.deepEqual(
        byKind.frames.map((f) => f.event),
        ['incident', 'note'],
      );
      await byNode.until((frames) => frames.some((f) => f.event === 'incident'));
      assert.deepEqual(
        byNode.frames.map((f) => f.event),
        ['node.enrolled', 'incident'],
      );
      assert.equal(junk.status, 200);
      assert.equal(junk.frames.length, 0);
      for (const c of [byKind, byNode, junk]) c.close();
    });

    test("a long replay goes at the reader's pace and is not evicted", async () => {
      const from = (await note('replay starts after this')).id;
      const text = 'y'.repeat(16_000);
      await t.server.store.write(async (trx) => {
        for (let i = 0; i < 1500; i++) {
          await t.server.app.events.append(trx, {
            kind: 'note',
            actor: 'admin',
            severity: 'info',
            data: { text },
          });
        }
      });
      const evictedBefore = t.server.app.streams.evicted;
      // The reader holds off, so replay stalls waiting for it; meanwhile the live feed hands the
      // same 1,500 events to the stream: more than it may hold pending, so it must read them from
      // the store once the reader goes on, rather than be evicted.
      const sse = await openSse(t.server.adminUrl, token, { lastEventId: String(from), paused: true });
      await t.server.app.streams.nudge();
      sse.resume();
      await sse.until((frames) => frames.length >= 1500, 30_000);
      assert.deepEqual(
        sse.frames.map((f) => Number(f.id)),
        Array.from({ length: 1500 }, (_, i) => from + 1 + i),
        'each once, in order',
      );
      assert.equal(t.server.app.streams.evicted, evictedBefore);
      assert.equal(sse.closed, false);
      sse.close();
    });

    test('concurrent writers: a live stream gets every event once, in id order', async () => {
      const sse = await openSse(t.server.adminUrl, token, { query: '?kind=note' });
      await poll(() => sse.comments.includes('connected'));
      const written = await Promise.all(Array.from({ length: 60 }, (_, i) => note(`concurrent ${i}`)));
      const ids = written.map((e) => e.id).sort((a, b) => a - b);
      await sse.until((frames) => frames.length >= ids.length);
      assert.deepEqual(
        sse.frames.map((f) => Number(f.id)),
        ids,
      );
      sse.close();
    });

    // Only PostgreSQL can interleave two writers. On SQLite every write goes through the one
    // writer (group commit runs them one after another), so no id is taken while an earlier one
    // is uncommitted; the concurrent-writers test above covers the order there.
    if (dialect === 'postgres') {
      test('an event still being committed is not skipped by one committed after it', async () => {
        const { events } = t.server.app;
        const { store } = t.server;
        const sse = await openSse(t.server.adminUrl, token, { query: '?kind=note' });
        await poll(() => sse.comments.includes('connected'));
        const append = (text: string) =>
          store.write((trx) =>
            events.append(trx, { kind: 'note', actor: 'admin', severity: 'info', data: { text } }),
          );
        // The slow transaction takes its id first and stays open until the fast one has either
        // committed (the bug: a reader would see the later id and step past the earlier) or is
        // seen waiting on a lock (the event_head row). No sleep decides it.
        let slowHasId!: () => void;
        const idTaken = new Promise<void>((resolve) => {
          slowHasId = resolve;
        });
        let releaseSlow!: () => void;
        const released = new Promise<void>((resolve) => {
          releaseSlow = resolve;
        });
        const slow = store.write(async (trx) => {
          await events.append(trx, {
            kind: 'note',
            actor: 'admin',
            severity: 'info',
            data: { text: 'slow' },
          });
          slowHasId();
          await released;
        });
        await idTaken;
        let fastCommitted = false;
        const fast = append('fast').then(() => {
          fastCommitted = true;
          events.afterCommit();
        });
        const waitingOnLock = async () => {
          const row = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'`.execute(store.db);
          return row.rows[0]!.n > 0;
        };
        try {
          await poll(async () => fastCommitted || (await waitingOnLock()));
          assert.equal(fastCommitted, false, 'a later event committed while an earlier one was still open');
        } finally {
          releaseSlow(); // whatever happened, the transaction ends (so does the server, after)
        }
        await Promise.all([slow.then(() => events.afterCommit()), fast]);
        await sse.until((frames) => frames.length >= 2);
        assert.deepEqual(notes(sse.frames), ['slow', 'fast']);
        sse.close();
      });
    }

    test('without the admin token there is no stream', async () => {
      const sse = await openSse(t.server.adminUrl, 'not-the-token');
      assert.equal(sse.status, 401);
      sse.close();
    });

    test('a bad Last-Event-ID is a 400 problem, not a stream', async () => {
      for (const lastEventId of ['abc', '-1', "'; DROP TABLE events; --", '1'.repeat(40)]) {
        const sse = await openSse(t.server.adminUrl, token, { lastEventId });
        assert.equal(sse.status, 400, lastEventId);
        sse.close();
      }
    });

    test('a stream client that never reads is evicted, and its buffer freed', async () => {
      const { events, streams } = t.server.app;
      await poll(
        () => streams.size === 0,
        10_000,
        () => `${streams.size} streams still open`,
      );
      const evictedBefore = streams.evicted;
      const { hostname: host, port } = new URL(t.server.adminUrl);
      const socket = connect({ host, port: Number(port) });
      let closed = false;
      socket.on('close', () => {
        closed = true;
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', reject);
      });
      socket.on('error', () => {}); // a reset after eviction is expected
      socket.write(
        `GET /v1/events/stream HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`,
      );
      socket.pause(); // and never read again
      await poll(() => streams.size === 1);

      // Big events, in bulk, until the kernel buffers are full and the server's own bound is hit.
      const text = 'x'.repeat(4000);
      await poll(
        async () => {
          if (streams.size === 0) return true;
          await t.server.store.write(async (trx) => {
            for (let i = 0; i < 100; i++) {
              await events.append(trx, { kind: 'note', actor: 'admin', severity: 'info', data: { text } });
            }
          });
          events.afterCommit();
          return false;
        },
        60_000,
        () => `still ${streams.size} streams`,
      );
      assert.equal(streams.evicted, evictedBefore + 1);
      const metrics = (
        await t.server.app.admin.inject({
          method: 'GET',
          url: '/metrics',
          headers: { authorization: `Bearer ${t.server.identity.adminToken}` },
        })
      ).body;
      assert.match(metrics, new RegExp(`^muster_event_streams_evicted ${evictedBefore + 1}$`, 'm'));
      assert.match(metrics, /^muster_event_streams 0$/m);
      // Reading now drains what the kernel held, then finds the connection closed.
      socket.resume();
      await poll(
        () => closed,
        30_000,
        () => 'the socket was not closed',
      );
    });

    if (dialect === 'postgres') {
      test('an event committed on one replica reaches streams held by another', async () => {
        const b = await startTestServer(dialect, { db: t.db, dataDir: t.dataDir, clock: t.clock });
        try {
          const sse = await openSse(b.server.adminUrl, token);
          await poll(() => sse.comments.includes('connected'));
          await note('written on replica a');
          await sse.until((frames) => notes(frames).includes('written on replica a'));
          sse.close();
        } finally {
          await b.close();
        }
      });
    }

    test('closing the server ends every stream', async () => {
      const other = await startTestServer(dialect);
      const sse = await openSse(other.server.adminUrl, other.server.identity.adminToken);
      await poll(() => sse.comments.includes('connected'));
      await other.close();
      await poll(() => sse.closed);
    });
  });
}
