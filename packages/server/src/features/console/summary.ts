import type { FleetSummary } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Schema } from '../../store/schema.js';

/** How long the heartbeat rate is averaged over. */
const RATE_WINDOW_MS = 10_000;

/**
 * Heartbeats per second, from a running total sampled every second or so: the rate is the
 * difference across the last window, so a bar that polls now and then reads a steady figure.
 */
export class RateMeter {
  private readonly samples: Array<{ at: number; total: number }> = [];

  constructor(
    private readonly total: () => Promise<number>,
    private readonly clock: Clock,
  ) {}

  async sample(): Promise<void> {
    const at = this.clock.now();
    this.samples.push({ at, total: await this.total() });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= RATE_WINDOW_MS) this.samples.shift();
  }

  /** Per second over the window; null until two samples exist. */
  perSecond(): number | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at <= first.at) return null;
    return ((last.total - first.total) * 1000) / (last.at - first.at);
  }

  /** Samples every `everyMs` until the signal aborts. */
  start(everyMs: number, signal: AbortSignal, onError: (err: unknown) => void): void {
    const timer = setInterval(() => this.sample().catch(onError), everyMs);
    timer.unref();
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }
}

/** The fleet bar's figures that the node list does not give. */
export async function fleetSummary(deps: {
  db: Kysely<Schema>;
  ledgerSize(): Promise<number>;
  channelsHeld(): number;
  heartbeats: Pick<RateMeter, 'perSecond'>;
}): Promise<FleetSummary> {
  const [size, checkpoint] = await Promise.all([
    deps.ledgerSize(),
    deps.db
      .selectFrom('ledger_checkpoints')
      .select(['size', 'ts'])
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst(),
  ]);
  const rate = deps.heartbeats.perSecond();
  return {
    channelsHeld: deps.channelsHeld(),
    heartbeatsPerSec: rate === null ? null : Math.round(rate * 10) / 10,
    ledger: {
      size,
      checkpoint: checkpoint
        ? { size: Number(checkpoint.size), signedAt: new Date(Number(checkpoint.ts)).toISOString() }
        : null,
    },
  };
}
