import type { Heartbeat } from '@muster/proto';
import { type Kysely, sql } from 'kysely';
import type { Schema } from '../../store/schema.js';
import { sampleOf, writeSamples } from '../telemetry/store.js';

interface Pending {
  nodeId: string;
  heartbeat: Heartbeat;
  receivedAt: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for heartbeats: requests that arrive while a transaction is being written wait
 * for the next one, so a thousand agents cost one durable commit instead of a thousand, and
 * every caller is answered only after its own heartbeat is on disk.
 */
export class HeartbeatWriter {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<Schema>,
    // Three parameters a row, well inside SQLite's and PostgreSQL's limits.
    private readonly maxBatch = 2000,
  ) {}

  /** Resolves once the heartbeat is committed. */
  write(nodeId: string, heartbeat: Heartbeat, receivedAt: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ nodeId, heartbeat, receivedAt, resolve, reject });
      if (!this.flushing) this.flushing = this.drain();
    });
  }

  /** Resolves when everything queued so far is written. */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    // Yield once so that requests already parsed in this turn of the event loop join the batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      // Only the newest heartbeat of each node matters for its latest state.
      const newest = new Map<string, Pending>();
      for (const item of batch) {
        const seen = newest.get(item.nodeId);
        if (!seen || seen.heartbeat.seq <= item.heartbeat.seq) newest.set(item.nodeId, item);
      }
      try {
        // One transaction for the whole batch, a handful of statements whatever its size:
        // UPDATE … FROM (VALUES …) for the latest state (it reads the same in both stores),
        // then the raw points and the rollups they fall in.
        const rows = [...newest.values()].map(
          (item) =>
            sql`(${item.nodeId}, cast(${item.receivedAt} as bigint), ${JSON.stringify(item.heartbeat)})`,
        );
        await this.db.transaction().execute(async (trx) => {
          await sql`
          update nodes set last_seen_at = batch.seen, latest = batch.latest
          from (select column1 as id, column2 as seen, column3 as latest from (values ${sql.join(rows)}) as v) as batch
          where nodes.id = batch.id and nodes.decommissioned_at is null`.execute(trx);
          // History keeps every heartbeat of the batch, not only the newest.
          await writeSamples(
            trx,
            batch.map((item) => ({
              nodeId: item.nodeId,
              ts: item.receivedAt,
              sample: sampleOf(item.heartbeat),
            })),
          );
        });
        for (const item of batch) item.resolve();
      } catch (err) {
        for (const item of batch) item.reject(err);
      }
    }
    this.flushing = undefined;
  }
}
