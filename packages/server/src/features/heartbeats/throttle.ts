import type { Logger } from 'pino';
import type { Clock } from '../../clock.js';
import type { HeartbeatTransport } from './routes.js';

/**
 * Holds each node to the heartbeat interval the server told it (paced: see pacer.ts): a token
 * bucket per node that refills at twice that rate, so an agent on schedule (it waits 0.9 to 1.1
 * intervals, or longer when it backs off) never drains it, plus a small burst for retries and
 * reconnects. A node sending faster is refused until its bucket refills.
 */
export class HeartbeatThrottle {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly clock: Clock,
    /** The interval agents are told now. */
    private readonly intervalMs: () => number,
    private readonly burst: number,
  ) {}

  /** Takes one heartbeat's token; returns 0 when allowed, otherwise the seconds to wait. */
  take(nodeId: string): number {
    const now = this.clock.now();
    const perMs = 2 / Math.max(1, this.intervalMs());
    const bucket = this.buckets.get(nodeId) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + Math.max(0, now - bucket.at) * perMs);
    bucket.at = now;
    this.buckets.set(nodeId, bucket);
    if (bucket.tokens < 1) return Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
    bucket.tokens -= 1;
    if (this.buckets.size > 200_000) this.forgetFull(now, perMs);
    return 0;
  }

  /** Buckets that refilled completely hold nothing worth keeping. */
  private forgetFull(now: number, perMs: number): void {
    for (const [id, bucket] of this.buckets)
      if (bucket.tokens + (now - bucket.at) * perMs >= this.burst) this.buckets.delete(id);
  }
}

/**
 * What is done with a refused heartbeat: counted (a metric) every time, said in the log at most
 * once a minute, so a flooding node cannot flood the log too.
 */
export function throttleReport(
  logger: Pick<Logger, 'warn'>,
  clock: Clock,
  count: (transport: HeartbeatTransport) => void,
): (nodeId: string, transport: HeartbeatTransport) => void {
  let saidAt = Number.NEGATIVE_INFINITY;
  let since = 0;
  return (nodeId, transport) => {
    count(transport);
    since++;
    if (clock.now() - saidAt < 60_000) return;
    saidAt = clock.now();
    logger.warn(
      { node: nodeId, transport, throttledSinceLastLine: since },
      'heartbeats throttled: a node reports faster than the interval it was told',
    );
    since = 0;
  };
}
