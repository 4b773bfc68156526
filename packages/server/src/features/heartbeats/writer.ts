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

  constructor(private readonly db: Kysely<Schema>) {}

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
    return batch.map(() => undefined);
  }
}
