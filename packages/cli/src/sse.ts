import { createParser } from 'eventsource-parser';

/** One Server-Sent Event as the stream sent it. */
export interface SseFrame {
  event: string;
  id?: string;
  data: string;
}

/**
 * Parses a `text/event-stream` as it arrives in chunks. The parsing is eventsource-parser's
 * (the one SSE parser the CLI, the console and the tests share); this only hands the frames
 * back per chunk, with the event name defaulting to `message` as the HTML standard says.
 */
export class SseParser {
  private out: SseFrame[] = [];
  private readonly parser = createParser({
    onEvent: ({ event, id, data }) =>
      this.out.push({ event: event ?? 'message', ...(id !== undefined ? { id } : {}), data }),
  });

  push(chunk: string): SseFrame[] {
    this.parser.feed(chunk);
    const frames = this.out;
    this.out = [];
    return frames;
  }
}
