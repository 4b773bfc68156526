import { type EventSeverity, NODE_STATUSES, type NodeStatus, type NodeView } from '@muster/proto';
import type { Kysely } from 'kysely';
import { after, type Clock, every } from '../../clock.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';
import type { EventSink } from '../events/service.js';
import { DeadlineQueue } from './deadlines.js';
import type { NodeService } from './service.js';
import { certificateIssuedAt, OFFLINE_AFTER_INTERVALS, renewalOverdueAt } from './status.js';

interface Tracked {
  status: NodeStatus;
  /** The heartbeat (or enrollment) the status was judged from. */
  seenAt: number;
  /** When the node counts as offline without another heartbeat. */
  offlineAt: number;
  /** When its certificate's renewal becomes overdue, or it expires. */
  certAt: number;
}

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
 *
 * It also keeps every active node's status as last assessed, so node counts by status cost
 * nothing to read (`/metrics`), and the sweep every few seconds assesses only the nodes that
 * can have changed: those whose heartbeats said something new (nudged at once), and those whose
 * time ran out (silent past their offline point, or a certificate past its renewal point or
 * end), taken from a deadline queue. A full pass now and then takes up what other replicas saw.
 */
export class StatusWatcher {
  private readonly pending = new Map<string, { status: NodeStatus; since: number }>();
  private readonly nudged = new Set<string>();
  private checking: Promise<void> | undefined;
  /** Every active node this process has assessed, as assessed. */
  private readonly tracked = new Map<string, Tracked>();
  private readonly counted = Object.fromEntries(NODE_STATUSES.map((s) => [s, 0])) as Record<
    NodeStatus,
    number
  >;
  /** When each node's last heartbeat was committed here, as the heartbeat writer tells. */
  private readonly heardAt = new Map<string, number>();
  private readonly deadlines = new DeadlineQueue();
  private firstPass: Promise<number> | undefined;
  private passed = false;
  /** When the last full pass began, whoever asked for it (the timer or a first scrape). */
  private fullAt = Number.NEGATIVE_INFINITY;

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
      /** The interval a node's silence is measured against (see heartbeats/pacer.ts); default 10 s. */
      heartbeatIntervalMs?: () => number;
    },
  ) {}

  private intervalMs(): number {
    return this.deps.heartbeatIntervalMs?.() ?? 10_000;
  }

  /** One pass over the whole fleet; returns how many changes were announced. */
  async sweep(): Promise<number> {
    const { db, nodes, clock } = this.deps;
    const now = clock.now();
    this.fullAt = now;
    const recorded = new Map(
      (await db.selectFrom('nodes').select(['id', 'status_recorded']).execute()).map((r) => [
        r.id,
        r.status_recorded as NodeStatus | null,
      ]),
    );
    let announced = 0;
    let cursor: string | null = null;
    const seen = new Set<string>();
    // Only nodes known before the pass can be missing from it for good: one that enrolled
    // during the pass, after its page was read, is not gone.
    const before = [...this.tracked.keys()];
    do {
      const page: Awaited<ReturnType<typeof nodes.list>> = await nodes.list({
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      cursor = page.nextCursor;
      for (const node of page.items) {
        seen.add(node.id);
        announced += await this.consider(node, recorded.get(node.id) ?? null, now);
      }
    } while (cursor);
    for (const id of before) if (!seen.has(id)) this.untrack(id);
    await this.countDecommissioned();
    this.passed = true;
    return announced;
  }

  /**
   * The sweep between full passes: assesses the nodes whose deadline has come, except those
   * heard from since (their offline point just moves on). Returns how many were assessed.
   */
  async sweepDue(): Promise<number> {
    const now = this.deps.clock.now();
    const stale = OFFLINE_AFTER_INTERVALS * this.intervalMs();
    const assess: string[] = [];
    for (const id of this.deadlines.takeDue(now)) {
      const node = this.tracked.get(id);
      if (!node) continue;
      const heard = this.heardAt.get(id);
      if (now < node.certAt && heard !== undefined && heard > node.seenAt && heard + stale >= now) {
        node.seenAt = heard;
        node.offlineAt = heard + stale + 1;
        this.schedule(id, node);
      } else assess.push(id);
    }
    for (let i = 0; i < assess.length; i += 500) await this.check(assess.slice(i, i + 500));
    return assess.length;
  }

  /** Nodes by status as last assessed; the first call waits for a full pass if none ran yet. */
  async counts(): Promise<Record<NodeStatus, number>> {
    if (!this.passed) {
      this.firstPass ??= this.sweep().finally(() => {
        this.firstPass = undefined;
      });
      await this.firstPass;
    }
    return { ...this.counted };
  }

  /** Heartbeats just committed, `[nodeId, receivedAt]`: moves those nodes' offline points on. */
  heard(seen: Iterable<readonly [string, number]>): void {
    for (const [id, at] of seen) this.heardAt.set(id, at);
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
    const views = await this.deps.nodes.views(ids);
    for (const node of views) await this.consider(node, recorded.get(node.id) ?? null, now);
    if (views.length < ids.length) {
      // Gone from the active fleet: decommissioned (here or on another replica).
      const active = new Set(views.map((v) => v.id));
      for (const id of ids) if (!active.has(id)) this.untrack(id);
      await this.countDecommissioned();
    }
  }

  /** Keeps a node's assessed status, counted, and when it must be looked at again. */
  private track(node: NodeView, now: number): void {
    const before = this.tracked.get(node.id);
    if (before) this.counted[before.status]--;
    this.counted[node.status]++;
    const seenAt = Date.parse(node.lastSeenAt ?? node.enrolledAt);
    const notAfter = Date.parse(node.cert.notAfter);
    const overdueAt = renewalOverdueAt(
      certificateIssuedAt(Date.parse(node.cert.notBefore), notAfter),
      notAfter,
    );
    const tracked: Tracked = {
      status: node.status,
      seenAt,
      offlineAt:
        node.status === 'offline'
          ? Number.POSITIVE_INFINITY
          : seenAt + OFFLINE_AFTER_INTERVALS * this.intervalMs() + 1,
      certAt: [overdueAt, notAfter].find((at) => at > now) ?? Number.POSITIVE_INFINITY,
    };
    this.tracked.set(node.id, tracked);
    this.schedule(node.id, tracked);
  }

  private schedule(id: string, node: Tracked): void {
    const at = Math.min(node.offlineAt, node.certAt);
    if (Number.isFinite(at)) this.deadlines.set(id, at);
    else this.deadlines.delete(id);
  }

  private untrack(id: string): void {
    const node = this.tracked.get(id);
    if (node) this.counted[node.status]--;
    this.tracked.delete(id);
    this.heardAt.delete(id);
    this.deadlines.delete(id);
  }

  private async countDecommissioned(): Promise<void> {
    const row = await this.deps.db
      .selectFrom('nodes')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('decommissioned_at', 'is not', null)
      .executeTakeFirstOrThrow();
    this.counted.decommissioned = Number(row.n);
  }

  /** Announces a node's status once it differs from the one announced and has held long enough. */
  private async consider(node: NodeView, before: NodeStatus | null, now: number): Promise<number> {
    const { write, events, debounceMs } = this.deps;
    this.track(node, now);
    if (node.status === before) {
      this.pending.delete(node.id);
      return 0;
    }
    const seen = this.pending.get(node.id);
    if (before !== null && (!seen || seen.status !== node.status)) {
      this.pending.set(node.id, { status: node.status, since: now });
      if (debounceMs > 0) {
        // Looked at again as soon as the debounce has run, not only at the next sweep.
        after(this.deps.clock, debounceMs + 10, () => this.nudge([node.id]));
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

  /**
   * Sweeps every `everyMs` until the signal aborts, over the whole fleet every `fullEveryMs`
   * and over what came due in between; never two sweeps at once.
   */
  start(everyMs: number, signal: AbortSignal, onError: (err: unknown) => void, fullEveryMs = 60_000): void {
    every(
      this.deps.clock,
      everyMs,
      async () => {
        try {
          if (!this.passed || this.deps.clock.now() - this.fullAt >= fullEveryMs) await this.sweep();
          else await this.sweepDue();
        } catch (err) {
          onError(err);
        }
      },
      signal,
    );
  }
}
