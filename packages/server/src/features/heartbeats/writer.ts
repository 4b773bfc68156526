import type { Heartbeat } from '@muster/proto';
import { type Kysely, sql } from 'kysely';
import { MicroBatch } from '../../store/micro-batch.js';
import type { Schema } from '../../store/schema.js';
import { sampleOf, writeSamples } from '../telemetry/store.js';

/** Telemetry points a node may have kept ahead of its pace. */
const TELEMETRY_BURST = 3;

interface Pending {
  nodeId: string;
  heartbeat: Heartbeat;
  receivedAt: number;
}

/**
 * Group commit for heartbeats: requests that arrive while a transaction is being written wait
 * for the next one, so a thousand agents cost one durable commit instead of a thousand, and
 * every caller is answered only after its own heartbeat is on disk.
 */
export class HeartbeatWriter {
  // Three parameters a row, well inside SQLite's and PostgreSQL's limits.
  private readonly batch = new MicroBatch<Pending>((items) => this.flush(items), 2000);

  /** What each node's last heartbeat said about its health, to notice a change cheaply. */
  private readonly health = new Map<string, { digest: string; at: number }>();

  /** Each node's telemetry points in hand (see sampled()). */
  private readonly samples = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly db: Kysely<Schema>,
    private readonly opts: {
      /** After a commit: the nodes whose health may have changed (or that were quiet for a while). */
      onChanged?: (nodeIds: string[]) => void;
      /** A node silent longer than this may have been offline: its next heartbeat is a change. */
      quietMs?: () => number;
      /** After a commit: every node heard from, with when (moves their offline points on). */
      onSeen?: (seen: Array<readonly [string, number]>) => void;
      /**
       * Telemetry keeps about one point per node in this time, whatever the node sends: its
       * history stays bounded even when heartbeats come faster than they should.
       */
      sampleGapMs?: () => number;
    } = {},
  ) {}

  /** Resolves once the heartbeat is committed. */
  write(nodeId: string, heartbeat: Heartbeat, receivedAt: number): Promise<void> {
    return this.batch.add({ nodeId, heartbeat, receivedAt });
  }

  /** Resolves when everything queued so far is written. */
  idle(): Promise<void> {
    return this.batch.idle();
  }

  private async flush(batch: Pending[]): Promise<undefined[]> {
    // Only the newest heartbeat of each node matters for its latest state.
    const newest = new Map<string, Pending>();
    for (const item of batch) {
      const seen = newest.get(item.nodeId);
      if (!seen || seen.heartbeat.seq <= item.heartbeat.seq) newest.set(item.nodeId, item);
    }
    // One transaction for the whole batch, a handful of statements whatever its size:
    // UPDATE … FROM (VALUES …) for the latest state (it reads the same in both stores),
    // then the raw points and the rollups they fall in.
    const rows = [...newest.values()].map(
      (item) => sql`(${item.nodeId}, cast(${item.receivedAt} as bigint), ${JSON.stringify(item.heartbeat)})`,
    );
    await this.db.transaction().execute(async (trx) => {
      await sql`
      update nodes set last_seen_at = batch.seen, latest = batch.latest
      from (select column1 as id, column2 as seen, column3 as latest from (values ${sql.join(rows)}) as v) as batch
      where nodes.id = batch.id and nodes.decommissioned_at is null`.execute(trx);
      // History keeps every heartbeat of the batch, not only the newest, one per gap at most.
      await writeSamples(
        trx,
        this.sampled(batch).map((item) => ({
          nodeId: item.nodeId,
          ts: item.receivedAt,
          sample: sampleOf(item.heartbeat),
        })),
      );
    });
    this.opts.onSeen?.([...newest.values()].map((item) => [item.nodeId, item.receivedAt] as const));
    if (this.opts.onChanged) this.noticeChanges([...newest.values()]);
    return batch.map(() => undefined);
  }

  /**
   * The heartbeats of a batch whose telemetry point is kept: each node has a small bucket of
   * points (TELEMETRY_BURST) that refills by one per gap, so an agent on schedule, even one
   * reporting early for a renewal, keeps every point, and a flood keeps a handful.
   */
  private sampled(batch: Pending[]): Pending[] {
    const gap = this.opts.sampleGapMs?.() ?? 0;
    if (gap <= 0) return batch;
    if (this.samples.size > 1_000_000) this.samples.clear();
    return batch.filter((item) => {
      const bucket = this.samples.get(item.nodeId) ?? { tokens: TELEMETRY_BURST, at: item.receivedAt };
      const refill = Math.max(0, item.receivedAt - bucket.at) / gap;
      bucket.tokens = Math.min(TELEMETRY_BURST, bucket.tokens + refill);
      bucket.at = Math.max(bucket.at, item.receivedAt);
      this.samples.set(item.nodeId, bucket);
      if (bucket.tokens < 1) return false;
      bucket.tokens -= 1;
      return true;
    });
  }

  private noticeChanges(items: Pending[]): void {
    const changed: string[] = [];
    const quiet = this.opts.quietMs?.() ?? 30_000;
    if (this.health.size > 1_000_000) this.health.clear();
    for (const item of items) {
      const digest = healthDigest(item.heartbeat, item.receivedAt);
      const last = this.health.get(item.nodeId);
      if (!last || last.digest !== digest || item.receivedAt - last.at > quiet) changed.push(item.nodeId);
      this.health.set(item.nodeId, { digest, at: item.receivedAt });
    }
    if (changed.length > 0) this.opts.onChanged!(changed);
  }
}

/**
 * The parts of a heartbeat a node's status depends on, coarsely: a node whose digest stays the
 * same is left to the regular sweep; one whose digest moves is checked at once.
 */
function healthDigest(h: Heartbeat, receivedAt: number): string {
  const bucket = (pct: number) => Math.floor(pct / 5);
  const diskPct = Math.max(
    0,
    ...h.disks.map((d) => (d.totalBytes > 0 ? 100 - (100 * d.freeBytes) / d.totalBytes : 0)),
  );
  const memPct = h.memory.totalBytes > 0 ? 100 - (100 * h.memory.availableBytes) / h.memory.totalBytes : 0;
  return [
    bucket(diskPct),
    bucket(memPct),
    Math.floor((h.load[0] ?? 0) * 2),
    h.services
      .filter((x) => !x.active)
      .map((x) => `${x.name}${x.state === 'unknown' ? '?' : ''}`)
      .join(','),
    h.checks
      .filter((c) => !c.ok)
      .map((c) => c.name)
      .join(','),
    h.certNotAfter ?? '',
    // The node's clock against the server's, in whole seconds: a skew reason comes and goes with it.
    Math.trunc((Date.parse(h.sentAt) - receivedAt) / 1000),
  ].join('|');
}
