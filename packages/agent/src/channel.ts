import { backoffDelay, type Log, rateLimitedWarn, ServerError, sleep } from '@muster/host';
import {
  CHANNEL_CLOSE,
  CHANNEL_PATH,
  type ChannelDown,
  type ChannelUp,
  type Heartbeat,
  type HeartbeatAck,
} from '@muster/proto';
import WebSocket from 'ws';
import { DialingAgent } from './dial.js';
import { type ServerList, unreachable } from './servers.js';

export interface ChannelTls {
  key?: string;
  cert?: string;
  ca?: string;
  /** With --signed-requests: the headers that sign the upgrade request (CONTRACT section 12). */
  sign?: (url: URL) => Record<string, string>;
}

/** No word from the server (ping, answer, anything) for this long: the channel is dead. */
const SILENCE_LIMIT_MS = 65_000;
const ANSWER_TIMEOUT_MS = 15_000;

/**
 * The agent's one outbound channel to the control plane. It keeps itself open in the
 * background (exponential backoff with full jitter between attempts), moves to a renewed
 * identity when told, and when no channel can be held the agent reports over HTTP instead
 * and says so once.
 */
export class AgentChannel {
  private ws: WebSocket | undefined;
  private readonly waiting = new Map<number, (m: ChannelDown | undefined) => void>();
  private wasOpen = false;
  private failedAttempts = 0;
  private saidFallback = false;
  private readonly stop = new AbortController();
  private running: Promise<void>;
  /** Why a channel failed is said (a line a minute at most), not only acted on. */
  private readonly failed: (err: unknown) => void;

  constructor(
    private readonly servers: ServerList,
    private tls: ChannelTls,
    private readonly log: Log,
    private readonly onSettings: (heartbeatIntervalSec: number) => void = () => {},
    /** Commands, policies and receipt acknowledgements the server sends down. */
    private readonly onMessage: (message: ChannelDown) => void = () => {},
  ) {
    this.failed = rateLimitedWarn(log, 'the channel to the control plane failed');
    this.running = this.keepOpen();
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /**
   * Sends a heartbeat over the channel and waits for its answer. Returns undefined when no
   * channel is open or it closed before answering: the caller reports over HTTP instead.
   */
  async heartbeat(heartbeat: Heartbeat): Promise<HeartbeatAck | undefined> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      // Still connecting (at start, or moving to a renewed identity) is not worth a warning;
      // a channel that could not be opened is.
      if (this.failedAttempts > 0 && !this.saidFallback) {
        this.log.warn('no channel to the control plane; reporting over HTTP until one opens');
        this.saidFallback = true;
      }
      return undefined;
    }
    const answer = await new Promise<ChannelDown | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(heartbeat.seq);
        resolve(undefined);
      }, ANSWER_TIMEOUT_MS);
      this.waiting.set(heartbeat.seq, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      ws.send(JSON.stringify({ type: 'heartbeat', heartbeat }));
    });
    if (!answer) return undefined;
    if (answer.type === 'error') throw new ServerError(answer.status, { detail: answer.detail });
    return answer.type === 'ack' ? answer.ack : undefined;
  }

  /** Sends a message up without waiting for an answer; false when no channel is open. */
  send(message: ChannelUp): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  /** Moves the channel to a renewed identity: the next connection presents the new certificate. */
  useIdentity(tls: ChannelTls): void {
    this.tls = tls;
    this.ws?.close(1000, 'moving to a renewed identity');
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.ws?.close(1000, 'agent stopping');
    await this.running;
  }

  private async keepOpen(): Promise<void> {
    for (let attempt = 0; !this.stop.signal.aborted; ) {
      const server = this.servers.current();
      const { outcome, error } = await this.connectOnce(server);
      if (this.stop.signal.aborted) return;
      if (outcome === 'held') attempt = 0;
      else attempt++;
      this.failedAttempts = attempt;
      let wait = 0;
      if (outcome === 'held') this.servers.succeeded(server);
      // Nothing answered there: the list moves on (and backs off once every server failed).
      else if (unreachable(error)) wait = this.servers.failed(server, error);
      else wait = backoffDelay(attempt, 1000, 60_000);
      await sleep(wait, this.stop.signal);
    }
  }

  /**
   * Opens one channel and resolves when it ends: 'held' if it was open, 'failed' if not, with
   * the error that kept it from opening.
   */
  private connectOnce(server: URL): Promise<{ outcome: 'held' | 'failed'; error?: Error }> {
    return new Promise((resolveEnd) => {
      const url = new URL(CHANNEL_PATH, server.href.replace(/^https:/, 'wss:'));
      // The dialer makes the connection (each DNS address, the proxy if any); TLS is the identity's.
      const { sign, ...tls } = this.tls;
      const agent = new DialingAgent(tls);
      const ws = new WebSocket(url, {
        agent,
        handshakeTimeout: 15_000,
        maxPayload: 1024 * 1024,
        ...(sign ? { headers: sign(url) } : {}),
      });
      this.ws = ws;
      let error: Error | undefined;
      const resolve = (outcome: 'held' | 'failed') => {
        agent.destroy();
        resolveEnd({ outcome, ...(error ? { error } : {}) });
      };
      let opened = false;
      let silence: NodeJS.Timeout | undefined;
      const heard = () => {
        clearTimeout(silence);
        silence = setTimeout(() => ws.terminate(), SILENCE_LIMIT_MS);
        silence.unref();
      };
      ws.on('open', () => {
        opened = true;
        heard();
        if (!this.wasOpen || this.saidFallback) this.log.info('channel to the control plane is open');
        this.wasOpen = true;
        this.saidFallback = false;
      });
      ws.on('ping', heard);
      ws.on('message', (data) => {
        heard();
        let message: ChannelDown;
        try {
          message = JSON.parse(String(data));
        } catch {
          return;
        }
        if (message.type === 'settings') this.onSettings(message.heartbeatIntervalSec);
        else if ((message.type === 'ack' || message.type === 'error') && message.seq !== undefined) {
          this.waiting.get(message.seq)?.(message);
          this.waiting.delete(message.seq);
        } else this.onMessage(message);
      });
      ws.on('unexpected-response', (_req, res) => {
        this.log.warn('the control plane refused the channel', { status: res.statusCode });
        ws.terminate();
      });
      ws.on('error', (err) => {
        error = err;
        if (!this.stop.signal.aborted) this.failed(err);
      });
      ws.on('close', (code) => {
        clearTimeout(silence);
        for (const resolveWaiter of this.waiting.values()) resolveWaiter(undefined);
        this.waiting.clear();
        if (code === CHANNEL_CLOSE.superseded) {
          this.log.error('security: another channel opened with this node identity and replaced this one');
        } else if (code === CHANNEL_CLOSE.identity) {
          this.log.error('the control plane closed the channel: this node identity is no longer accepted');
        }
        // Replaced or refused: back off as after a failure, so two hosts sharing one identity
        // (or a refused one) do not fight over the channel in a tight loop.
        const refused = code === CHANNEL_CLOSE.superseded || code === CHANNEL_CLOSE.identity;
        resolve(opened && !refused ? 'held' : 'failed');
      });
    });
  }
}
