import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import { emit, progress, spawnServer } from './support.js';

export interface EventsOptions {
  /** SSE clients connected to the stream. */
  streams: number;
  /** Events written, one after another. */
  events: number;
  /** `postgres://…` to bench on PostgreSQL; a fresh SQLite file otherwise. */
  db?: string;
}

interface Stream {
  /** When each event id arrived, in ms (performance.now()). */
  arrivals: Map<number, number>;
  close(): void;
}

function openStream(adminUrl: string, token: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const arrivals = new Map<number, number>();
    const req = request(`${adminUrl}/v1/events/stream?kind=note`, {
      agent: false,
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`the stream answered ${res.statusCode}`));
      // An event arrives when the chunk that completes it does.
      let now = 0;
      const parser = createParser({
        onEvent: ({ id }) => {
          if (id && /^\d+$/.test(id)) arrivals.set(Number(id), now);
        },
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        now = performance.now();
        parser.feed(chunk);
      });
      resolve({ arrivals, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * Event stream latency: `streams` SSE clients follow a real server while notes are written one
 * after another; each note's latency is from the start of its POST to its arrival at a stream.
 * Measured against the POST's own round trip (the commit) in the same run: what the stream adds
 * is the difference.
 */
export async function eventsScenario(opts: EventsOptions): Promise<void> {
  const server = await spawnServer([], opts.db);
  try {
    const token = readFileSync(join(server.dataDir, 'admin.token'), 'utf8').trim();
    progress(`opening ${opts.streams} event streams`);
    const streams: Stream[] = [];
    for (let i = 0; i < opts.streams; i++) streams.push(await openStream(server.adminUrl, token));
    progress(`writing ${opts.events} notes`);
    const started = new Map<number, number>();
    const commits: number[] = [];
    for (let i = 0; i < opts.events; i++) {
      const t0 = performance.now();
      const event = await server.admin<{ id: number }>('POST', '/v1/events', {
        kind: 'note',
        text: `bench ${i}`,
      });
      commits.push(performance.now() - t0);
      started.set(event.id, t0);
    }
    const deadline = Date.now() + 30_000;
    while (streams.some((s) => s.arrivals.size < opts.events) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const latencies: number[] = [];
    let missing = 0;
    for (const stream of streams) {
      for (const [id, t0] of started) {
        const at = stream.arrivals.get(id);
        if (at === undefined) missing++;
        else latencies.push(at - t0);
      }
      stream.close();
    }
    latencies.sort((a, b) => a - b);
    commits.sort((a, b) => a - b);
    const common = { streams: opts.streams, events: opts.events, store: opts.db ? 'postgres' : 'sqlite' };
    emit('events', 'post_round_trip_p50_ms', percentile(commits, 50), {
      ...common,
      unit: 'ms, the commit alone',
    });
    emit('events', 'post_round_trip_p99_ms', percentile(commits, 99), {
      ...common,
      unit: 'ms, the commit alone',
    });
    emit('events', 'stream_latency_p50_ms', percentile(latencies, 50), {
      ...common,
      unit: 'ms from the start of the POST to arrival at a stream client',
    });
    emit('events', 'stream_latency_p99_ms', percentile(latencies, 99), {
      ...common,
      unit: 'ms from the start of the POST to arrival at a stream client',
    });
    emit('events', 'events_not_delivered', missing, { ...common, goal: '0' });
  } finally {
    await server.stop();
  }
}
