import type { EventEnvelope, FleetSummary, NodeList, NodeStatus, NodeView } from '@muster/proto';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { Names } from './names.js';
import { EventStream, type StreamState } from './stream.js';

/** Highest first: the order the node list shows what needs attention. */
export const STATUS_RANK: Record<NodeStatus, number> = {
  offline: 0,
  critical: 1,
  attention: 2,
  ok: 3,
  decommissioned: 4,
};

/** Events kept in memory for the feed and the node timelines. */
const MAX_EVENTS = 2000;
const NODE_REFRESH_MS = 30_000;
const SUMMARY_REFRESH_MS = 5_000;

type Listener = () => void;

/**
 * What the console knows of the fleet: the nodes, recent events, the fleet bar's figures and
 * the stream's state. Changes are told to the views at most once per animation frame, so a
 * burst of a thousand events a second costs one render per frame, not one per event.
 */
export class FleetModel {
  nodes = new Map<string, NodeView>();
  nodesLoaded = false;
  loadError: string | undefined;
  /** Oldest first; views read them newest first. */
  events: EventEnvelope[] = [];
  /** Set when history was lost to retention while the console was away. */
  gapNote: string | undefined;
  summary: FleetSummary | undefined;
  stream: { state: StreamState; detail?: string } = { state: 'connecting' };
  /** Names for the node and command ids events and the ledger carry. */
  readonly names = new Names(() => this.changed());
  private sorted: NodeView[] | undefined;
  private readonly listeners = new Set<Listener>();
  private readonly eventListeners = new Set<(e: EventEnvelope) => void>();
  private frame = 0;
  private eventStream: EventStream | undefined;
  private timers: ReturnType<typeof setInterval>[] = [];
  private refetching = new Set<string>();

  constructor(private readonly signedOut: () => void) {}

  async start(): Promise<void> {
    const history = await api<{ items: EventEnvelope[] }>('GET', '/v1/events?limit=500');
    this.events = history.items.slice().reverse();
    for (const e of this.events) this.names.learnEvent(e);
    const lastId = this.events.at(-1)?.id ?? 0;
    // History first, then the stream from the newest event in it: no gap, nothing twice.
    this.eventStream = new EventStream(lastId, {
      event: (e) => this.onEvent(e),
      gap: (g) => {
        this.gapNote = `events ${g.lostFrom}–${g.lostThrough} were removed by retention before the console could show them`;
        this.changed();
      },
      state: (state, detail) => {
        this.stream = detail === undefined ? { state } : { state, detail };
        if (state === 'live' && this.nodesLoaded) void this.loadNodes(); // catch up on what the stream does not carry
        this.changed();
      },
      unauthorized: this.signedOut,
    });
    this.eventStream.start();
    void this.loadNodes();
    void this.loadSummary();
    this.timers.push(
      setInterval(() => document.visibilityState === 'visible' && void this.loadNodes(), NODE_REFRESH_MS),
      setInterval(
        () => document.visibilityState === 'visible' && void this.loadSummary(),
        SUMMARY_REFRESH_MS,
      ),
    );
  }

  stop(): void {
    this.eventStream?.stop();
    for (const t of this.timers) clearInterval(t);
    cancelAnimationFrame(this.frame);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Each live event as it arrives (node timelines follow their node this way). */
  onEachEvent(listener: (e: EventEnvelope) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  changed(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      for (const l of this.listeners) l();
    });
  }

  /** Active nodes, what needs attention first, then by name. */
  sortedNodes(): NodeView[] {
    this.sorted ??= [...this.nodes.values()].sort(
      (a, b) =>
        STATUS_RANK[a.status] - STATUS_RANK[b.status] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    );
    return this.sorted;
  }

  async loadNodes(): Promise<void> {
    try {
      const next = new Map<string, NodeView>();
      let cursor: string | null = null;
      do {
        const page: NodeList = await api<NodeList>(
          'GET',
          `/v1/nodes?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        for (const node of page.items) next.set(node.id, node);
        cursor = page.nextCursor;
      } while (cursor);
      this.nodes = next;
      this.names.learnNodes(next.values());
      this.sorted = undefined;
      this.nodesLoaded = true;
      this.loadError = undefined;
    } catch (err) {
      this.loadError = err instanceof Error ? err.message : String(err);
    }
    this.changed();
  }

  async loadSummary(): Promise<void> {
    try {
      this.summary = await api<FleetSummary>('GET', '/v1/fleet');
      this.changed();
    } catch {
      // The bar keeps its last figures; the stream banner says when the server is away.
    }
  }

  private onEvent(event: EventEnvelope): void {
    this.events.push(event);
    this.names.learnEvent(event);
    if (this.events.length > MAX_EVENTS + 500) this.events.splice(0, this.events.length - MAX_EVENTS);
    const id = event.nodeId;
    if (id !== undefined) {
      const node = this.nodes.get(id);
      if (event.kind === 'node.status_changed' && node) {
        const data = event.data as { to?: NodeStatus; reasons?: string[] };
        if (data.to) {
          this.nodes.set(id, { ...node, status: data.to, reasons: data.reasons ?? [] });
          this.sorted = undefined;
        }
      } else if (event.kind === 'node.decommissioned') {
        if (this.nodes.delete(id)) this.sorted = undefined;
      } else if (event.kind.startsWith('node.')) {
        void this.refetchNode(id);
      }
    }
    if (event.kind.startsWith('node.') || event.kind.startsWith('token.')) this.summaryDue();
    for (const l of this.eventListeners) l(event);
    this.changed();
  }

  private summaryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Decisions grow the ledger: the bar's figures are read again soon, once per burst. */
  private summaryDue(): void {
    this.summaryTimer ??= setTimeout(() => {
      this.summaryTimer = undefined;
      void this.loadSummary();
    }, 1000);
  }

  private async refetchNode(id: string): Promise<void> {
    if (this.refetching.has(id)) return;
    this.refetching.add(id);
    try {
      const node = await api<NodeView>('GET', `/v1/nodes/${encodeURIComponent(id)}`);
      if (node.status === 'decommissioned') this.nodes.delete(id);
      else this.nodes.set(id, node);
      this.names.learnNodes([node]);
      this.sorted = undefined;
      this.changed();
    } catch {
      // Gone or unreachable: the next full refresh settles it.
    } finally {
      this.refetching.delete(id);
    }
  }
}

/** Re-renders the calling view whenever the model changes (batched per frame). */
export function useModel(model: FleetModel): FleetModel {
  const [, setTick] = useState(0);
  useEffect(() => model.subscribe(() => setTick((t) => t + 1)), [model]);
  return model;
}

/** The current time, moving every second: "last seen 12 s ago" ticks without a fetch. */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}
