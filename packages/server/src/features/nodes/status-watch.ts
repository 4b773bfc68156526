import type { EventSeverity, NodeStatus, NodeView } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';
import type { EventSink } from '../events/service.js';
import type { NodeService } from './service.js';

const SEVERITY: Record<NodeStatus, EventSeverity> = {
  ok: 'info',
  attention: 'warning',
  critical: 'critical',
  offline: 'critical',
  decommissioned: 'info',
};

/**
 * Turns node status into `node.status_changed` events, debounced: a new status is announced
 * only once it has held for `debounceMs`, so an agent flapping between two states floods
 * nobody. The announced status is kept on the node and changed by a conditional update in the
 * same transaction as the event, so with several replicas sweeping, each change is told once.
 */
export class StatusWatcher {
  private readonly pending = new Map<string, { status: NodeStatus; since: number }>();
  private readonly nudged = new Set<string>();
  private checking: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      db: Kysely<Schema>;
      write: Store['write'];
      /** Where a failed nudge is said (rate-limited, see rate-limited-log.ts). */
      nudgeFailed?: (err: unknown) => void;
      nodes: Pick<NodeService, 'list' | 'views'>;
      events: Pick<EventSink, 'append'>;
      clock: Clock;
      debounceMs: number;
    },
  ) {}

  /** One pass over the fleet; returns how many changes were announced. */
  async sweep(): Promise<number> {
    const { db, nodes, clock } = this.deps;
    const now = clock.now();
    const recorded = new Map(
      (await db.selectFrom('nodes').select(['id', 'status_recorded']).execute()).map((r) => [
        r.id,
        r.status_recorded as NodeStatus | null,
      ]),
    );
    let announced = 0;
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof nodes.list>> = await nodes.list({
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      cursor = page.nextCursor;
      for (const node of page.items)
        announced += await this.consider(node, recorded.get(node.id) ?? null, now);
    } while (cursor);
    return announced;
  }

  /**
   * Checks these nodes now, between sweeps: called when their heartbeats suggest a change, so
   * an event follows a heartbeat in milliseconds instead of at the next sweep.
   */
  nudge(nodeIds: Iterable<string>): void {
    for (const id of nodeIds) this.nudged.add(id);
    if (this.checking) return;
    this.checking = (async () => {
      while (this.nudged.size > 0) {
        const ids = [...this.nudged].slice(0, 500);
        for (const id of ids) this.nudged.delete(id);
        try {
          await this.check(ids);
        } catch (err) {
          // The next sweep looks at every node anyway, but a failing store is still said.
          this.deps.nudgeFailed?.(err);
        }
      }
      this.checking = undefined;
    })();
  }

  private async check(ids: string[]): Promise<void> {
    const now = this.deps.clock.now();
    const rows = await this.deps.db
      .selectFrom('nodes')
      .select(['id', 'status_recorded'])
      .where('id', 'in', ids)
      .execute();
    const recorded = new Map(rows.map((r) => [r.id, r.status_recorded as NodeStatus | null]));
    for (const node of await this.deps.nodes.views(ids))
      await this.consider(node, recorded.get(node.id) ?? null, now);
  }

  /** Announces a node's status once it differs from the one announced and has held long enough. */
  private async consider(node: NodeView, before: NodeStatus | null, now: number): Promise<number> {
    const { write, events, debounceMs } = this.deps;
    if (node.status === before) {
      this.pending.delete(node.id);
      return 0;
    }
    const seen = this.pending.get(node.id);
    if (before !== null && (!seen || seen.status !== node.status)) {
      this.pending.set(node.id, { status: node.status, since: now });
      if (debounceMs > 0) {
        // Looked at again as soon as the debounce has run, not only at the next sweep.
        setTimeout(() => this.nudge([node.id]), debounceMs + 10).unref();
        return 0;
      }
    } else if (before !== null && now - seen!.since < debounceMs) return 0;
    let announced = 0;
    // A node's first status is recorded quietly: its enrollment was an event already.
    await write(async (trx) => {
      const changed = await trx
        .updateTable('nodes')
        .set({ status_recorded: node.status, status_recorded_at: now })
        .where('id', '=', node.id)
        .where((eb) =>
          before === null ? eb('status_recorded', 'is', null) : eb('status_recorded', '=', before),
        )
        .executeTakeFirst();
      if (before !== null && changed.numUpdatedRows === 1n) {
        await events.append(trx, {
          kind: 'node.status_changed',
          nodeId: node.id,
          actor: 'system',
          severity: SEVERITY[node.status],
          data: { name: node.name, from: before, to: node.status, reasons: node.reasons },
        });
        announced = 1;
      }
    });
    this.pending.delete(node.id);
    return announced;
  }

  /** Sweeps every `everyMs` until the signal aborts; never two sweeps at once. */
  start(everyMs: number, signal: AbortSignal, onError: (err: unknown) => void): void {
    const tick = async () => {
      if (signal.aborted) return;
      try {
        await this.sweep();
      } catch (err) {
        onError(err);
      }
      if (!signal.aborted) setTimeout(tick, everyMs).unref();
    };
    setTimeout(tick, everyMs).unref();
  }
}
