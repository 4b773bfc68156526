import { request } from 'node:http';
import { createParser } from 'eventsource-parser';

/** One parsed Server-Sent Event. */
export interface SseFrame {
  event: string;
  id?: string;
  data: string;
}

/** A test client of `GET /v1/events/stream` on the admin plane (plain HTTP on loopback). */
export interface SseClient {
  status: number;
  frames: SseFrame[];
  comments: string[];
  closed: boolean;
  /** Resolves once `predicate` holds for the frames received, or rejects after `ms`. */
  until(predicate: (frames: SseFrame[]) => boolean, ms?: number): Promise<void>;
  close(): void;
  /** Starts reading again, for a client opened with `paused`. */
  resume(): void;
}

export function openSse(
  adminUrl: string,
  token: string,
  opts: { lastEventId?: string; query?: string; paused?: boolean } = {},
): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${adminUrl}/v1/events/stream${opts.query ?? ''}`,
      {
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'text/event-stream',
          ...(opts.lastEventId !== undefined ? { 'last-event-id': opts.lastEventId } : {}),
        },
      },
      (res) => {
        const client: SseClient = {
          status: res.statusCode ?? 0,
          frames: [],
          comments: [],
          closed: false,
          until: (predicate, ms = 10_000) =>
            poll(
              () => predicate(client.frames),
              ms,
              () => JSON.stringify(client.frames.slice(-5)),
            ),
          close: () => req.destroy(),
          resume: () => res.resume(),
        };
        // The one SSE parser the CLI and the console use too, so the tests read what they read.
        const parser = createParser({
          onEvent: ({ event, id, data }) =>
            client.frames.push({ event: event ?? 'message', ...(id !== undefined ? { id } : {}), data }),
          onComment: (comment) => client.comments.push(comment.trim()),
        });
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => parser.feed(chunk));
        res.on('close', () => {
          client.closed = true;
        });
        if (opts.paused) res.pause();
        resolve(client);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Polls until `check` holds, failing with `describe()` after `ms`: no timing assertions. */
export async function poll(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  describe = () => '',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms ${describe()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
