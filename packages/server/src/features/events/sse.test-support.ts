import { request } from 'node:http';

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
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const frame: SseFrame = { event: 'message', data: '' };
            let isComment = true;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) {
                client.comments.push(line.slice(1).trim());
                continue;
              }
              isComment = false;
              const at = line.indexOf(':');
              const field = at < 0 ? line : line.slice(0, at);
              const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
              if (field === 'event') frame.event = value;
              else if (field === 'id') frame.id = value;
              else if (field === 'data') frame.data += frame.data ? `\n${value}` : value;
            }
            if (!isComment) client.frames.push(frame);
          }
        });
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
