import { NODE_STATUSES, type NodeStatus } from '@muster/proto';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Where the gauges that describe the fleet read from. */
export interface MetricSources {
  /** Kept by the status watcher as statuses change: reading it costs nothing. */
  nodesByStatus(): Promise<Record<NodeStatus, number>>;
  channelsHeld(): number;
  /** Live event streams, and how many were evicted for not reading, since start. */
  eventStreams(): { open: number; evicted: number };
  /** Connections each plane holds now. */
  connectionsOpen(): Record<'agent' | 'admin', number>;
}

/**
 * The server's Prometheus metrics, in a registry of its own (two apps in one process, as in
 * tests, never share counters). Gauges that describe the fleet are read when scraped.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly heartbeats: Counter<'transport'>;
  readonly enrollments: Counter;
  readonly requestSeconds: Histogram<'plane' | 'route' | 'status'>;
  readonly storeWriteSeconds: Histogram;
  readonly heartbeatsThrottled: Counter<'transport'>;
  readonly connectionsRefused: Counter<'plane' | 'reason'>;

  /** Read when scraped; set by `observe` once the features that keep them exist. */
  private sources: MetricSources | undefined;

  constructor(sources?: MetricSources) {
    this.sources = sources;
    const read = () => this.sources;
    const registers = [this.registry];
    this.heartbeats = new Counter({
      name: 'muster_heartbeats_received_total',
      help: 'Heartbeats taken, by how they came',
      labelNames: ['transport'],
      registers,
    });
    this.heartbeatsThrottled = new Counter({
      name: 'muster_heartbeats_throttled_total',
      help: 'Heartbeats refused (429) for coming faster than the interval the node was told',
      labelNames: ['transport'],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'muster_connections_refused_total',
      help: 'Connections closed before being served: over a budget (total, per_source) or a handshake not finished in time',
      labelNames: ['plane', 'reason'],
      registers,
    });
    this.enrollments = new Counter({ name: 'muster_enrollments_total', help: 'Nodes enrolled', registers });
    this.requestSeconds = new Histogram({
      name: 'muster_http_request_duration_seconds',
      help: 'Time to answer a request, by plane, route and status',
      labelNames: ['plane', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.storeWriteSeconds = new Histogram({
      name: 'muster_store_write_duration_seconds',
      help: 'Time for a write to be committed, waiting for its group commit included',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    new Gauge({
      name: 'muster_nodes',
      help: 'Nodes by status, as the status watcher last assessed them',
      labelNames: ['status'],
      registers,
      async collect() {
        const counts: Partial<Record<NodeStatus, number>> = (await read()?.nodesByStatus()) ?? {};
        for (const status of NODE_STATUSES) this.set({ status }, counts[status] ?? 0);
      },
    });
    this.streamGauges(() => read()?.eventStreams() ?? { open: 0, evicted: 0 });
    new Gauge({
      name: 'muster_connections_open',
      help: 'Connections each plane holds now, against its budget',
      labelNames: ['plane'],
      registers,
      collect() {
        for (const [plane, n] of Object.entries(read()?.connectionsOpen() ?? {})) this.set({ plane }, n);
      },
    });
    new Gauge({
      name: 'muster_channels_held',
      help: 'Agent channels open on this server',
      registers,
      collect() {
        this.set(read()?.channelsHeld() ?? 0);
      },
    });
  }

  /** Gives the fleet gauges their sources (the metrics exist before the features they describe). */
  observe(sources: MetricSources): void {
    this.sources = sources;
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Registers the event-stream gauges (kept apart: the streams exist only with events). */
  private streamGauges(read: () => { open: number; evicted: number }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'muster_event_streams',
      help: 'Event streams (SSE) open on this server',
      registers,
      collect() {
        this.set(read().open);
      },
    });
    new Gauge({
      name: 'muster_event_streams_evicted',
      help: 'Event stream clients evicted for not reading, since start',
      registers,
      collect() {
        this.set(read().evicted);
      },
    });
  }
}
