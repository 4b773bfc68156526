import { backoffDelay, backoffWindow, type Log, ServerError } from '@muster/host';
import type { AgentConfig } from './config.js';

/** Moving to the next server after a failure waits a moment, not a backoff step. */
const SKIP_MS = 250;
const BASE_MS = 1000;
const CAP_MS = 60_000;

/**
 * The control plane's agent-plane URLs (`--server`, repeatable), shared by every request and
 * the channel. The agent stays with the server that answers; a server it cannot reach moves it
 * on to the next, quickly, and only when every server has failed in a row does it back off
 * (exponential, full jitter), so a lost replica costs its agents seconds, and a replica that
 * comes back is not met by its whole fleet at once.
 */
export class ServerList {
  private index = 0;
  /** Failed servers in a row since the last success; a full round of them is one backoff step. */
  private failedInRound = 0;
  private round = 0;
  /** The end of the current backoff step: every caller (heartbeats, channel) waits for it. */
  private resumeAt = 0;

  constructor(
    readonly urls: readonly URL[],
    private readonly log: Log,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {
    if (urls.length === 0) throw new Error('no server URL');
  }

  current(): URL {
    return this.urls[this.index]!;
  }

  /** A request to `url` went through: stay with it. */
  succeeded(url: URL): void {
    if (url.href !== this.current().href) return;
    if (this.failedInRound > 0 || this.round > 0)
      this.log.info('reaching the control plane again', { server: url.origin });
    this.failedInRound = 0;
    this.round = 0;
    this.resumeAt = 0;
  }

  /**
   * `url` could not be reached: moves on to the next server and returns how long to wait before
   * the next attempt. A failure at a server the list has already left (another request failed
   * there first) changes nothing, so each server is logged once per backoff step.
   */
  failed(url: URL, err: unknown, what = 'cannot reach the control plane at'): number {
    if (url.href !== this.current().href) return this.skip();
    this.index = (this.index + 1) % this.urls.length;
    this.failedInRound++;
    const fields: Record<string, unknown> = { error: (err as Error).message, next: this.current().origin };
    let wait: number;
    if (this.failedInRound < this.urls.length) {
      wait = this.skip();
    } else {
      // Every server failed in a row: one backoff step before the next round.
      this.failedInRound = 0;
      this.round++;
      wait = backoffDelay(this.round, BASE_MS, CAP_MS, this.random);
      this.resumeAt = this.now() + wait;
      fields.backoffWindowMs = backoffWindow(this.round, BASE_MS, CAP_MS);
    }
    this.log.warn(`${what} ${url.origin}`, { ...fields, retryInMs: wait });
    return wait;
  }

  /** A moment before the next server, or what is left of the backoff step another caller began. */
  private skip(): number {
    return Math.max(Math.floor(this.random() * SKIP_MS), this.resumeAt - this.now());
  }
}

/**
 * Errors that say nothing answered at this server (refused, timed out, reset, a name that does
 * not resolve, a proxy that would not connect), or that the replica is not serving: worth trying
 * the next one. A TLS verification failure is not: the pin and the fleet CA hold for every server.
 */
export function unreachable(err: unknown): boolean {
  if (err instanceof ServerError) return err.status === 502 || err.status === 503 || err.status === 504;
  return UNREACHABLE_CODES.has((err as NodeJS.ErrnoException | undefined)?.code ?? '');
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPROXY',
]);

/** The servers to try: those given on the command line, else the one the identity enrolled with. */
export function serverUrls(config: Pick<AgentConfig, 'server' | 'servers'>, enrolledWith?: string): URL[] {
  if (config.servers && config.servers.length > 0) return [...config.servers];
  if (config.server) return [config.server];
  return enrolledWith ? [new URL(enrolledWith)] : [];
}
