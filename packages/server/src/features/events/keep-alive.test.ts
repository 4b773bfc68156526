import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ManualClock } from '../../clock.js';
import { openStore, type Store } from '../../store/db.js';
import { EventService } from './service.js';
import { openSse, poll } from './sse.test-support.js';
import { DEFAULT_STREAM_LIMITS, EventStreams } from './streams.js';

// The streams on their own, with a keep-alive short enough to watch.
let dir: string;
let store: Store;
let streams: EventStreams;
let service: EventService;
let server: Server;
let url: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muster-streams-'));
  store = await openStore(`sqlite:${join(dir, 'muster.db')}`);
  const events = new EventService({
    db: store.db,
    write: (fn) => store.write(fn),
    clock: new ManualClock(),
    retentionMs: 86_400_000,
  });
  service = events;
  streams = new EventStreams(events, { ...DEFAULT_STREAM_LIMITS, keepAliveMs: 20, stallMs: 300 });
  await streams.start();
  server = createServer((req, res) => {
    const last = req.headers['last-event-id'];
    void streams.serve(res, typeof last === 'string' ? Number(last) : undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(async () => {
  streams.stop();
  await new Promise((resolve) => server.close(resolve));
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test('a replay to a reader that takes nothing is evicted after the stall limit', async () => {
  const text = 'z'.repeat(16_000);
  await store.write(async (trx) => {
    for (let i = 0; i < 1500; i++) {
      await service.append(trx, { kind: 'note', actor: 'admin', severity: 'info', data: { text } });
    }
  });
  const evictedBefore = streams.evicted;
  const sse = await openSse(url, 'unused', { lastEventId: '0', paused: true });
  await poll(
    () => streams.evicted === evictedBefore + 1,
    10_000,
    () => `${streams.size} streams held`,
  );
  assert.equal(streams.size, 0);
  sse.close();
});

test('an idle stream gets keep-alive comments, and stop() ends it', async () => {
  const sse = await openSse(url, 'unused');
  assert.equal(sse.status, 200);
  await poll(() => sse.comments.filter((c) => c === 'keep-alive').length >= 2);
  assert.equal(sse.frames.length, 0, 'comments are not events');
  streams.stop();
  await poll(() => sse.closed);
  assert.equal(streams.size, 0);
  const late = await openSse(url, 'unused');
  assert.equal(late.status, 503, 'no new stream once stopping');
  late.close();
});
