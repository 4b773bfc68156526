import type { Clock } from '../../clock.js';

/**
 * Adaptive heartbeats: every agent is told to report at the configured interval, stretched so
 * that the whole fleet stays under a total rate (like Nomad's max heartbeats per second). The
 * staleness threshold follows the interval agents were told, and after the interval shrinks it
 * keeps the longer one until every agent has had the chance to hear the new one.
 */
export class HeartbeatPacer {
  private current: number;
  private previous: number;
  private changedAt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly maxPerSecond: number,
    private readonly clock: Clock,
  ) {
    this.current = baseMs;
    this.previous = baseMs;
  }

  /** The interval agents are told now. */
  intervalMs(): number {
    return this.current;
  }

  /** The interval a node's silence is measured against. */
  stalenessIntervalMs(): number {
    return this.clock.now() - this.changedAt < this.previous
      ? Math.max(this.current, this.previous)
      : this.current;
  }

  /** Re-paces for a fleet of `activeNodes`; whole seconds, never below the configured interval. */
  update(activeNodes: number): void {
    const needed = Math.ceil(activeNodes / this.maxPerSecond) * 1000;
    const next = Math.max(this.baseMs, needed);
    if (next === this.current) return;
    this.previous = this.current;
    this.current = next;
    this.changedAt = this.clock.now();
  }

  /** Re-paces from the store every `everyMs` until the signal aborts. */
  start(
    countActive: () => Promise<number>,
    everyMs: number,
    signal: AbortSignal,
    onError: (err: unknown) => void,
  ): void {
    const tick = async () => {
      if (signal.aborted) return;
      try {
        this.update(await countActive());
      } catch (err) {
        onError(err);
      }
      if (!signal.aborted) setTimeout(tick, everyMs).unref();
    };
    void tick();
  }
}
