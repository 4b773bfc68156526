import type { ServerResponse } from 'node:http';
import type { EventEnvelope, EventGap, NodeFacets } from '@muster/proto';
import type { EventService } from './service.js';

export interface StreamLimits {
  /** Events a client may have queued before it is evicted. */
  maxEvents: number;
  /** Bytes a client may have queued before it is evicted. */
  maxBytes: number;
  keepAliveMs: number;
  /** How often streams look for events committed elsewhere (another replica) without a nudge. */
  pollMs: number;
  /** How long a stream may wait on a reader that takes nothing before it is evicted. */
  stallMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxEvents: 1000,
  maxBytes: 1 << 20,
  keepAliveMs: 15_000,
  pollMs: 1000,
  stallMs: 60_000,
};

/** Events read per query when replaying history. */
const PAGE = 500;
/**
 * Events read per query for the live feed, and so handed to every stream in one go: small enough
 * that a burst of large events stays well under a reader's byte bound between two reads.
 */
const LIVE_PAGE = 100;

/**
 * What one stream sends: each event, with the node it is about when the stream is `scoped` (a
 * role narrowed to some nodes decides by the node's labels and profile, read as the event goes out).
 */
export type StreamFilter = (event: EventEnvelope, node: NodeFacets | undefined) => boolean;

/** The labels and profile of the nodes with these ids (those that exist). */
export type FacetsOf = (ids: string[]) => Promise<Map<string, NodeFacets>>;

/** One SSE frame: `event:` is the kind, `id:` the event id, `data:` the envelope. */
export function frame(event: EventEnvelope): string {
  return `id: ${event.id}\nevent: ${event.kind.replace(/[\r\n]/g, '')}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * One connected SSE client. While it replays history, live events wait in `pending` (up to
 * `maxEvents`; past that, replay fetches them from the store again); then they are written
 * straight to the socket. Whatever it has not read counts against its limits, and a
 * client over them is evicted: its socket is closed, so a reader that stalls costs bounded memory.
 */
class StreamClient {
  /** The last id written to this client. */
  cursor: number;
  live = false;
  closed = false;
  evicted = false;
  /** Events written to it. */
  sent = 0;
  private pending: Array<{ id: number; text: string }> = [];
  /** More live events came during replay than `pending` holds: replay reads them instead. */
  private overflowed = false;
  private queuedSinceDrain = 0;
  /** Runs while the socket is full; a reader that takes nothing until it fires is evicted. */
  private stall: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly limits: StreamLimits,
    cursor: number,
    private readonly onEvicted: () => void,
    /** Only events this accepts are sent; all when absent. */
    readonly wants: StreamFilter = () => true,
    /** `wants` needs the node of each event. */
    readonly scoped = false,
  ) {
    this.cursor = cursor;
    res.on('drain', () => {
      this.queuedSinceDrain = 0;
      clearTimeout(this.stall);
      this.stall = undefined;
    });
  }

  /** A live event, in id order. */
  offer(event: EventEnvelope, text: string, node: NodeFacets | undefined): void {
    const id = event.id;
    if (this.closed || id <= this.cursor || !this.wants(event, node)) return;
    if (!this.live) {
      // They are all in the store too: past the bound, replay reads them rather than memory.
      if (this.pending.length < this.limits.maxEvents) this.pending.push({ id, text });
      else {
        this.pending = [];
        this.overflowed = true;
      }
      return;
    }
    this.write(id, text);
  }

  /** Writes a replayed or live event and moves the cursor past it. */
  write(id: number, text: string): void {
    if (this.closed) return;
    this.sent++;
    this.cursor = Math.max(this.cursor, id);
    this.raw(text);
  }

  raw(text: string): void {
    if (this.closed) return;
    if (!this.res.write(text)) {
      this.queuedSinceDrain++;
      this.stall ??= setTimeout(() => this.evict(), this.limits.stallMs).unref();
    }
    if (this.res.writableLength > this.limits.maxBytes || this.queuedSinceDrain > this.limits.maxEvents) {
      this.evict();
    }
  }

  /**
   * Resolves once the socket has taken what was written, or closed: replay waits for readers,
   * and one that takes nothing is evicted by the stall timer like any other.
   */
  drained(): Promise<void> {
    if (this.closed || !this.res.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  /**
   * Replay is done: what arrived meanwhile follows, without the ones replay already sent.
   * False when some of it overflowed `pending` (nothing is written then): replay again.
   */
  goLive(): boolean {
    const pending = this.pending;
    this.pending = [];
    if (this.overflowed) {
      this.overflowed = false;
      return false;
    }
    this.live = true;
    for (const event of pending) if (event.id > this.cursor) this.write(event.id, event.text);
    return true;
  }

  evict(): void {
    clearTimeout(this.stall);
    if (this.closed) return;
    this.closed = true;
    this.evicted = true;
    this.pending = [];
    this.onEvicted();
    this.res.destroy();
  }

  /** The socket closed, whoever closed it. */
  released(): void {
    clearTimeout(this.stall);
    this.closed = true;
  }

  end(): void {
    clearTimeout(this.stall);
    if (this.closed) return;
    this.closed = true;
    this.res.end();
  }
}

/**
 * The live side of events: every committed event reaches every connected stream of this process
 * at once (EventService tells it after each commit), and events committed by other replicas
 * within `pollMs`.
 */
export class EventStreams {
  private readonly clients = new Set<StreamClient>();
  private lastId = -1;
  private reading: Promise<void> | undefined;
  private again = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;
  /** How many clients were evicted for not reading, since start. */
  evicted = 0;

  constructor(
    private readonly events: EventService,
    private readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS,
    private readonly onError: (err: unknown) => void = () => {},
    /** Told when a stream ends (hijacked responses miss the request log): for one log line. */
    private readonly onEnded: (stream: { ms: number; sent: number; evicted: boolean }) => void = () => {},
    /** Where scoped streams learn the nodes events are about; without it they see none. */
    private readonly facetsOf: FacetsOf = async () => new Map(),
  ) {
    events.onCommitted(() => this.nudge());
  }

  /** Starts the keep-alive and the poll for other replicas' events. */
  async start(): Promise<void> {
    this.lastId = await this.events.latestId();
    const keepAlive = setInterval(() => {
      for (const client of this.clients) if (client.live) client.raw(': keep-alive\n\n');
    }, this.limits.keepAliveMs);
    const poll = setInterval(() => {
      if (this.clients.size > 0) this.nudge();
    }, this.limits.pollMs);
    keepAlive.unref();
    poll.unref();
    this.timers.push(keepAlive, poll);
  }

  /** Connected streams. */
  get size(): number {
    return this.clients.size;
  }

  /** Reads what was committed since the last read and hands it to every stream; never overlaps. */
  nudge(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        try {
          await this.readNew();
        } catch (err) {
          this.onError(err);
        }
      } while (this.again);
      this.reading = undefined;
    })();
    return this.reading;
  }

  private async readNew(): Promise<void> {
    if (this.lastId < 0) return; // not started
    for (;;) {
      const batch = await this.events.after(this.lastId, LIVE_PAGE);
      // One read of the batch's nodes for every scoped stream, and none when there is no such stream.
      const nodes = [...this.clients].some((c) => c.scoped) ? await this.nodesOf(batch) : undefined;
      for (const event of batch) {
        this.lastId = event.id;
        if (this.clients.size === 0) continue;
        const text = frame(event);
        const node = event.nodeId === undefined ? undefined : nodes?.get(event.nodeId);
        for (const client of this.clients) client.offer(event, text, node);
      }
      if (batch.length < LIVE_PAGE) return;
    }
  }

  /**
   * Serves one stream on a hijacked response. `resumeAfter` is the Last-Event-ID: the events
   * after it are replayed first (with a gap event when retention removed some of them); without
   * one the stream starts with the next event.
   */
  async serve(
    res: ServerResponse,
    resumeAfter: number | undefined,
    wants?: StreamFilter,
    scoped = false,
  ): Promise<void> {
    if (this.stopped) {
      // The server is stopping: a stream opened now would hold its close up.
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' });
      res.end('the server is stopping\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    // An id from the future (another database, a typo) resumes from now rather than wait for it.
    const latest = Math.max(this.lastId, await this.events.latestId());
    const start = resumeAfter === undefined ? latest : Math.min(resumeAfter, latest);
    if (this.stopped) {
      res.end();
      return;
    }
    const client = new StreamClient(
      res,
      this.limits,
      start,
      () => {
        this.evicted++;
        this.clients.delete(client);
      },
      wants,
      scoped,
    );
    this.clients.add(client);
    const opened = performance.now();
    res.on('close', () => {
      this.onEnded({
        ms: Math.round(performance.now() - opened),
        sent: client.sent,
        evicted: client.evicted,
      });
      client.released();
      this.clients.delete(client);
    });
    client.raw(': connected\n\n');
    try {
      // Until it has caught up with a quiet enough moment: live events that overflowed the
      // pending list while it replayed are read from the store in another round.
      do {
        await this.replay(client);
        if (client.closed) return;
      } while (!client.goLive());
    } catch (err) {
      this.onError(err);
      client.evict();
    }
  }

  private async replay(client: StreamClient): Promise<void> {
    for (;;) {
      if (client.closed) return;
      const from = client.cursor;
      const page = await this.events.after(from, PAGE);
      // Retention keeps a suffix of the ids and moves the horizon in the transaction that
      // deletes, so the horizon read after the page tells whether the page began past lost
      // history (also when a sweep ran between the two reads): then the gap is said first.
      const pruned = await this.events.prunedThrough();
      if (from < pruned && (page.length === 0 || page[0]!.id > pruned)) {
        const gap: EventGap = { lostFrom: from + 1, lostThrough: pruned };
        client.write(pruned, `id: ${pruned}\nevent: gap\ndata: ${JSON.stringify(gap)}\n\n`);
      }
      const nodes = client.scoped ? await this.nodesOf(page) : undefined;
      for (const event of page) {
        const node = event.nodeId === undefined ? undefined : nodes?.get(event.nodeId);
        if (event.id > client.cursor && client.wants(event, node)) client.write(event.id, frame(event));
        // History goes out as fast as the client reads it, not faster: a long replay to a slow
        // but live reader holds one socket buffer, and only new events count against its limits.
        await client.drained();
        if (client.closed) return;
      }
      if (page.length < PAGE) return;
    }
  }

  private nodesOf(events: EventEnvelope[]): Promise<Map<string, NodeFacets>> {
    const ids = new Set<string>();
    for (const event of events) if (event.nodeId !== undefined) ids.add(event.nodeId);
    return ids.size === 0 ? Promise.resolve(new Map()) : this.facetsOf([...ids]);
  }

  /** Ends every stream (the server is stopping) and stops the timers. */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}
