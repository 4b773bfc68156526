import { type FleetSummary, type NodeFacets, roleAllows } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Principal } from '../../identity.js';
import type { Schema } from '../../store/schema.js';
import { readableNodes } from '../access/scope.js';

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

/**
 * The fleet bar's figures that the node list does not give, as the principal may see them: a
 * role narrowed to some nodes counts the channels of those nodes only, and is not shown the
 * server's heartbeat rate (a figure of the whole fleet); a role that may not read the ledger
 * is not shown its size.
 */
export async function fleetSummary(deps: {
  db: Kysely<Schema>;
  ledgerSize(): Promise<number>;
  channelsHeld(): number;
  heldNodeIds(): string[];
  facets(ids: string[]): Promise<Map<string, NodeFacets>>;
  heartbeats: Pick<RateMeter, 'perSecond'>;
  principal: Principal | null;
}): Promise<FleetSummary> {
  const { principal } = deps;
  const visible = readableNodes(principal, 'nodes');
  const ledgerShown =
    !principal || principal.roles.every((r) => roleAllows(r, { verb: 'read', resource: 'ledger' }));
  const [ledger, channelsHeld] = await Promise.all([
    ledgerShown ? ledgerFigures(deps) : null,
    visible ? countVisible(deps.heldNodeIds(), visible, deps.facets) : deps.channelsHeld(),
  ]);
  const rate = visible ? null : deps.heartbeats.perSecond();
  return {
    channelsHeld,
    heartbeatsPerSec: rate === null ? null : Math.round(rate * 10) / 10,
    ledger,
  };
}

async function countVisible(
  ids: string[],
  visible: (node: NodeFacets) => boolean,
  facets: (ids: string[]) => Promise<Map<string, NodeFacets>>,
): Promise<number> {
  let count = 0;
  // In slices: a server may hold tens of thousands of channels, past a statement's parameter limit.
  for (let i = 0; i < ids.length; i += 5000) {
    for (const node of (await facets(ids.slice(i, i + 5000))).values()) if (visible(node)) count++;
  }
  return count;
}

async function ledgerFigures(deps: { db: Kysely<Schema>; ledgerSize(): Promise<number> }) {
  const [size, checkpoint] = await Promise.all([
    deps.ledgerSize(),
    deps.db
      .selectFrom('ledger_checkpoints')
      .select(['size', 'ts'])
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst(),
  ]);
  return {
    size,
    checkpoint: checkpoint
      ? { size: Number(checkpoint.size), signedAt: new Date(Number(checkpoint.ts)).toISOString() }
      : null,
  };
}
