import type { EventEnvelope, EventGap } from '@muster/proto';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export type StreamState = 'connecting' | 'live' | 'lost';

export interface StreamHandlers {
  event(event: EventEnvelope): void;
  gap(gap: EventGap): void;
  state(state: StreamState, detail?: string): void;
  /** The session ended: the stream answered 401. */
  unauthorized(): void;
}

/** No byte for this long (keep-alives come every 15 s) means the connection is dead. */
const SILENCE_MS = 40_000;

/**
 * The live event stream, read with fetch rather than EventSource: every event kind arrives
 * through one path (EventSource hands named events only to listeners for that name), a 401 is
 * told apart from a network error, and resuming sends `Last-Event-ID` from the last event
 * handled, so a reconnect after a drop or a server restart shows nothing twice and loses nothing.
 */
export class EventStream {
  private stopped = false;
  private controller: AbortController | undefined;

  constructor(
    private lastId: number,
    private readonly on: StreamHandlers,
  ) {}

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
  }

  private async run(): Promise<void> {
    let backoff = 500;
    while (!this.stopped) {
      const controller = new AbortController();
      this.controller = controller;
      let silence: ReturnType<typeof setTimeout> | undefined;
      const watch = () => {
        clearTimeout(silence);
        silence = setTimeout(() => controller.abort(), SILENCE_MS);
      };
      let detail = 'the connection dropped';
      try {
        this.on.state('connecting');
        watch();
        const res = await fetch('/v1/events/stream', {
          headers: { accept: 'text/event-stream', 'last-event-id': String(this.lastId) },
          credentials: 'same-origin',
          cache: 'no-store',
          signal: controller.signal,
        });
        if (res.status === 401) {
          this.stopped = true;
          this.on.unauthorized();
          break;
        }
        if (!res.ok || !res.body) throw new Error(`the server answered ${res.status}`);
        this.on.state('live');
        backoff = 500;
        await this.read(res.body, watch);
        detail = 'the server closed the stream';
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof Error && err.name !== 'AbortError') detail = err.message;
      } finally {
        clearTimeout(silence);
      }
      if (this.stopped) break;
      this.on.state('lost', detail);
      // Jittered, doubling up to 10 s: a restarted server is not met by every console at once.
      await new Promise((resolve) => setTimeout(resolve, backoff * (0.75 + Math.random() / 2)));
      backoff = Math.min(backoff * 2, 10_000);
    }
  }

  private async read(body: ReadableStream<Uint8Array>, alive: () => void): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = createParser({ onEvent: (message) => this.frame(message) });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      alive();
      parser.feed(decoder.decode(value, { stream: true }));
    }
  }

  private frame({ id: rawId, event, data }: EventSourceMessage): void {
    if (rawId === undefined || !/^\d+$/.test(rawId)) return;
    const id = Number(rawId);
    if (id <= this.lastId) return; // already shown: never twice
    this.lastId = id;
    try {
      const payload = JSON.parse(data) as unknown;
      if (event === 'gap') this.on.gap(payload as EventGap);
      else this.on.event(payload as EventEnvelope);
    } catch {
      // A frame that is not JSON is not an event; the cursor still moves past it.
    }
  }
}
