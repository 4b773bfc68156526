import type { Heartbeat } from '@muster/proto';
import { type Kysely, sql } from 'kysely';
import { MicroBatch } from '../../store/micro-batch.js';
import type { Schema } from '../../store/schema.js';
import { sampleOf, writeSamples } from '../telemetry/store.js';

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

  constructor(
    private readonly db: Kysely<Schema>,
    /** After a commit: the nodes whose health may have changed (or that were quiet for a while). */
    private readonly onChanged?: (nodeIds: string[]) => void,
    /** A node silent longer than this may have been offline: its next heartbeat is a change. */
    private readonly quietMs: () => number = () => 30_000,
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
      // History keeps every heartbeat of the batch, not only the newest.
      await writeSamples(
        trx,
        batch.map((item) => ({ nodeId: item.nodeId, ts: item.receivedAt, sample: sampleOf(item.heartbeat) })),
      );
    });
    if (this.onChanged) this.noticeChanges([...newest.values()]);
    return batch.map(() => undefined);
  }

  private noticeChanges(items: Pending[]): void {
    const changed: string[] = [];
    const quiet = this.quietMs();
    if (this.health.size > 1_000_000) this.health.clear();
    for (const item of items) {
      const digest = healthDigest(item.heartbeat);
      const last = this.health.get(item.nodeId);
      if (!last || last.digest !== digest || item.receivedAt - last.at > quiet) changed.push(item.nodeId);
      this.health.set(item.nodeId, { digest, at: item.receivedAt });
    }
    if (changed.length > 0) this.onChanged!(changed);
  }
}

/**
 * The parts of a heartbeat a node's status depends on, coarsely: a node whose digest stays the
 * same is left to the regular sweep; one whose digest moves is checked at once.
 */
function healthDigest(h: Heartbeat): string {
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
  ].join('|');
}
