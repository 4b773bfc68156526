import type { EventCreateRequest, EventEnvelope, EventList, EventSeverity } from '@muster/proto';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Clock } from '../../clock.js';
import { UnprocessableError } from '../../errors.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import type { Store } from '../../store/db.js';
import type { Notifications } from '../../store/notifications.js';
import type { EventsTable, Schema } from '../../store/schema.js';

/** An event as a feature adds it; the id and time are given by the store and the clock. */
export interface EventInput {
  kind: string;
  nodeId?: string | null;
  /** `admin`, `node:<id>`, `system`. */
  actor: string;
  severity: EventSeverity;
  data: Record<string, unknown>;
}

/**
 * The hook for any feature that makes events: call `append` inside the transaction that makes the
 * change, after any `decisions.record` in it (decisions lock the ledger first, then events; the
 * same order everywhere keeps PostgreSQL free of deadlocks). Writes through the app's `write`
 * reach live streams as soon as they commit; a feature that writes through `store.db` directly
 * calls `afterCommit()` once its transaction has committed. Node status changes are meant to come
 * in here, as `node.status_changed` (owned by features/nodes).
 */
export interface EventSink {
  append(trx: Kysely<Schema>, event: EventInput): Promise<number>;
  afterCommit(): void;
}

export interface EventQuery {
  /** Milliseconds since the epoch: only events at or after it. */
  since?: number;
  kinds?: string[];
  /** A node id or name. */
  node?: string;
  limit: number;
  cursor?: string;
}

export interface EventServiceDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  retentionMs: number;
  /** Tells the other replicas' streams after commit (PostgreSQL); absent on SQLite. */
  notifications?: Notifications;
}

/** The channel replicas hear new events on. */
export const EVENTS_CHANNEL = 'muster_events';

export const MAX_EVENTS_PER_PAGE = 1000;
export const DEFAULT_EVENTS_PER_PAGE = 100;

const DEFAULT_SEVERITY: Record<EventCreateRequest['kind'], EventSeverity> = {
  note: 'info',
  incident: 'warning',
  ack: 'info',
  resolve: 'info',
  tag: 'info',
};

/**
 * Events: stored with retention, listed newest first, and told to live streams after commit
 * (the `onCommitted` callback, which features/events/streams.ts listens to).
 */
export class EventService implements EventSink {
  /** Transactions that added an event: the app's `write` tells the streams when they commit. */
  private readonly touched = new WeakSet<object>();
  private committedListener: () => void = () => {};

  constructor(private readonly deps: EventServiceDeps) {}

  /** Called after a transaction that added events has committed. */
  onCommitted(listener: () => void): void {
    this.committedListener = listener;
  }

  afterCommit(): void {
    this.committedListener();
  }

  async append(trx: Kysely<Schema>, event: EventInput): Promise<number> {
    // Taking the head row's lock first serializes event writers, also across replicas, so ids
    // become visible in the order they were given and a live reader never skips one.
    await trx
      .updateTable('event_head')
      .set({ pruned_through: sql<number>`pruned_through` })
      .where('id', '=', 1)
      .execute();
    const row = await trx
      .insertInto('events')
      .values({
        ts: this.deps.clock.now(),
        kind: event.kind,
        node_id: event.nodeId ?? null,
        actor: event.actor,
        severity: event.severity,
        data: JSON.stringify(event.data),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (!this.touched.has(trx)) await this.deps.notifications?.notify(trx, EVENTS_CHANNEL);
    this.touched.add(trx);
    return Number(row.id);
  }

  /**
   * Wraps the store's `write` so that a transaction that added events tells the live streams
   * once it has committed, never before.
   */
  committing(write: Store['write']): Store['write'] {
    return async (fn) => {
      let added = false;
      const result = await write(async (trx) => {
        const value = await fn(trx);
        if (this.touched.has(trx)) added = true;
        return value;
      });
      if (added) this.afterCommit();
      return result;
    };
  }

  /** An operator's note, incident, acknowledgement, resolution or tag. */
  async create(input: EventCreateRequest, actor: string): Promise<EventEnvelope> {
    const text = input.text?.trim() ?? '';
    if ((input.kind === 'note' || input.kind === 'incident') && text === '') {
      throw new UnprocessableError(`a ${input.kind} needs a text`, 'text_required');
    }
    if (input.kind === 'tag' && input.tag === undefined) {
      throw new UnprocessableError('a tag event needs a tag', 'tag_required');
    }
    if ((input.kind === 'ack' || input.kind === 'resolve') && input.ref === undefined) {
      throw new UnprocessableError(`an ${input.kind} names the event it answers in ref`, 'ref_required');
    }
    const id = await this.deps.write(async (trx) => {
      let nodeId = input.nodeId ?? null;
      if (nodeId !== null) {
        const node = await trx.selectFrom('nodes').select('id').where('id', '=', nodeId).executeTakeFirst();
        if (!node) throw new UnprocessableError(`no node with id ${nodeId}`, 'unknown_node');
      }
      if (input.ref !== undefined) {
        const ref = await trx
          .selectFrom('events')
          .select(['kind', 'node_id'])
          .where('id', '=', input.ref)
          .executeTakeFirst();
        if (!ref) throw new UnprocessableError(`no event with id ${input.ref}`, 'unknown_event');
        if (input.kind === 'resolve' && ref.kind !== 'incident') {
          throw new UnprocessableError(
            `event ${input.ref} is a ${ref.kind}, not an incident`,
            'not_an_incident',
          );
        }
        nodeId ??= ref.node_id;
      }
      return this.append(trx, {
        kind: input.kind,
        nodeId,
        actor,
        severity: input.severity ?? DEFAULT_SEVERITY[input.kind],
        data: {
          ...(text !== '' ? { text } : {}),
          ...(input.ref !== undefined ? { ref: input.ref } : {}),
          ...(input.tag !== undefined ? { tag: input.tag } : {}),
        },
      });
    });
    this.afterCommit();
    const row = await this.deps.db
      .selectFrom('events')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return envelope(row);
  }

  /** History, newest first; `nextCursor` continues further back. */
  async list(query: EventQuery): Promise<EventList> {
    const limit = Math.min(Math.max(1, Math.floor(query.limit)), MAX_EVENTS_PER_PAGE);
    const before = query.cursor === undefined ? undefined : decodeCursor(query.cursor, readEventPosition);
    let q = this.deps.db.selectFrom('events').selectAll();
    if (before !== undefined) q = q.where('id', '<', before);
    if (query.since !== undefined) q = q.where('ts', '>=', query.since);
    if (query.kinds && query.kinds.length > 0) q = q.where('kind', 'in', query.kinds);
    const node = query.node;
    if (node !== undefined) {
      q = q.where((eb) =>
        eb.or([
          eb('node_id', '=', node),
          eb('node_id', 'in', eb.selectFrom('nodes').select('nodes.id').where('nodes.name', '=', node)),
        ]),
      );
    }
    const rows = await q
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    const more = rows.length > limit;
    const items = rows.slice(0, limit).map(envelope);
    return { items, nextCursor: more ? encodeCursor({ before: items[items.length - 1]!.id }) : null };
  }

  /** The ids a node name or id stands for (a name may have been several nodes over time). */
  async nodeIds(node: string): Promise<string[]> {
    const rows = await this.deps.db
      .selectFrom('nodes')
      .select('id')
      .where((eb) => eb.or([eb('id', '=', node), eb('name', '=', node)]))
      .execute();
    return rows.map((r) => r.id);
  }

  /** Committed events after `after`, oldest first: what a stream replays and the live feed reads. */
  async after(after: number, limit: number): Promise<EventEnvelope[]> {
    const rows = await this.deps.db
      .selectFrom('events')
      .selectAll()
      .where('id', '>', after)
      .orderBy('id', 'asc')
      .limit(limit)
      .execute();
    return rows.map(envelope);
  }

  /** The newest id, 0 when there is none. */
  async latestId(): Promise<number> {
    const row = await this.deps.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  /** The last id retention removed: a stream resuming before it has lost history. */
  async prunedThrough(): Promise<number> {
    const row = await this.deps.db
      .selectFrom('event_head')
      .select('pruned_through')
      .where('id', '=', 1)
      .executeTakeFirst();
    return Number(row?.pruned_through ?? 0);
  }

  /**
   * Removes events older than the retention. What is kept is always a suffix of the ids, and the
   * head remembers where it starts, so a stream that asks for older history is told of the gap.
   */
  async sweep(): Promise<number> {
    const cutoff = this.deps.clock.now() - this.deps.retentionMs;
    return this.deps.write(async (trx) => {
      const head = await trx
        .updateTable('event_head')
        .set({ pruned_through: sql<number>`pruned_through` })
        .where('id', '=', 1)
        .returning('pruned_through')
        .executeTakeFirstOrThrow();
      const old = await trx
        .selectFrom('events')
        .select((eb) => eb.fn.max('id').as('id'))
        .where('ts', '<', cutoff)
        .executeTakeFirst();
      const through = Number(old?.id ?? 0);
      if (through <= Number(head.pruned_through)) return 0;
      const deleted = await trx.deleteFrom('events').where('id', '<=', through).executeTakeFirst();
      await trx.updateTable('event_head').set({ pruned_through: through }).where('id', '=', 1).execute();
      return Number(deleted.numDeletedRows);
    });
  }

  /** Sweeps now and then until the signal aborts; a failed sweep is reported and retried later. */
  startSweeper(intervalMs: number, signal: AbortSignal, onError: (err: unknown) => void): void {
    const loop = () => {
      if (signal.aborted) return;
      this.sweep()
        .catch(onError)
        .finally(() => {
          if (signal.aborted) return;
          const timer = setTimeout(loop, intervalMs * (0.9 + Math.random() * 0.2));
          timer.unref();
          signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
        });
    };
    const first = setTimeout(loop, intervalMs);
    first.unref();
    signal.addEventListener('abort', () => clearTimeout(first), { once: true });
  }
}

export function envelope(row: Selectable<EventsTable>): EventEnvelope {
  return {
    id: Number(row.id),
    ts: new Date(Number(row.ts)).toISOString(),
    kind: row.kind,
    ...(row.node_id !== null ? { nodeId: row.node_id } : {}),
    actor: row.actor,
    severity: row.severity as EventSeverity,
    data: JSON.parse(row.data) as Record<string, unknown>,
  };
}

/** History's position, `{"before": id}` on the wire (see http/cursor.ts). */
function readEventPosition(value: unknown): number | undefined {
  if (
    typeof value === 'object' &&
    value !== null &&
    Object.keys(value).length === 1 &&
    'before' in value &&
    Number.isSafeInteger(value.before) &&
    (value.before as number) > 0
  ) {
    return value.before as number;
  }
  return undefined;
}
