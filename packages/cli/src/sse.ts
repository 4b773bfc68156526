/** One Server-Sent Event as the stream sent it. */
export interface SseFrame {
  event: string;
  id?: string;
  data: string;
}

/**
 * Parses a `text/event-stream` as it arrives in chunks (WHATWG HTML, "event stream
 * interpretation"): comments are dropped, `data` lines are joined, a frame ends at a blank line.
 */
export class SseParser {
  private buffer = '';
  private frame: SseFrame = { event: 'message', data: '' };
  private hasData = false;

  push(chunk: string): SseFrame[] {
    this.buffer += chunk;
    const out: SseFrame[] = [];
    for (let nl = this.buffer.search(/\r\n|\n|\r/); nl >= 0; nl = this.buffer.search(/\r\n|\n|\r/)) {
      // A CR at the end may be the first half of a CRLF still on its way.
      if (nl === this.buffer.length - 1 && this.buffer.endsWith('\r')) break;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(this.buffer.startsWith('\r\n', nl) ? nl + 2 : nl + 1);
      if (line === '') {
        if (this.hasData) out.push(this.frame);
        this.frame = { event: 'message', data: '' };
        this.hasData = false;
        continue;
      }
      if (line.startsWith(':')) continue;
      const at = line.indexOf(':');
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
      if (field === 'event') this.frame.event = value;
      else if (field === 'id') this.frame.id = value;
      else if (field === 'data') {
        this.frame.data = this.hasData ? `${this.frame.data}\n${value}` : value;
        this.hasData = true;
      }
    }
    return out;
  }
}
