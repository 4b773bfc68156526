import type { Heartbeat } from '@muster/proto';
import { type Kysely, sql } from 'kysely';
import type { Schema } from '../../store/schema.js';

/** The figures a telemetry point keeps: what the console charts and `nodes show` prints. */
export interface Sample {
  cpuPct: number;
  load1: number;
  memUsedPct: number;
  /** The fullest disk's use, in percent. */
  diskUsedPct: number;
}

export function sampleOf(heartbeat: Heartbeat): Sample {
  const mem = heartbeat.memory;
  const memUsedPct = mem.totalBytes > 0 ? (100 * (mem.totalBytes - mem.availableBytes)) / mem.totalBytes : 0;
  let diskUsedPct = 0;
  for (const d of heartbeat.disks) {
    if (d.totalBytes > 0)
      diskUsedPct = Math.max(diskUsedPct, (100 * (d.totalBytes - d.freeBytes)) / d.totalBytes);
  }
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    cpuPct: round(heartbeat.cpuPct),
    load1: round(heartbeat.load[0] ?? 0),
    memUsedPct: round(memUsedPct),
    diskUsedPct: round(diskUsedPct),
  };
}

export const ROLLUPS = { minute: 60_000, hour: 3_600_000 } as const;
export type Rollup = keyof typeof ROLLUPS;

/**
 * Writes a batch of samples: raw points, and the per-minute and per-hour rollups they fall in,
 * each as one multi-row statement (an upsert for the rollups), on whatever connection the
 * heartbeat batch uses.
 */
export async function writeSamples(
  db: Kysely<Schema>,
  items: ReadonlyArray<{ nodeId: string; ts: number; sample: Sample }>,
): Promise<void> {
  if (items.length === 0) return;
  await db
    .insertInto('telemetry_raw')
    .values(
      items.map(({ nodeId, ts, sample }) => ({
        node_id: nodeId,
        ts,
        cpu_pct: sample.cpuPct,
        load1: sample.load1,
        mem_used_pct: sample.memUsedPct,
        disk_used_pct: sample.diskUsedPct,
      })),
    )
    .execute();
  for (const [rollup, width] of Object.entries(ROLLUPS) as Array<[Rollup, number]>) {
    // Fold the batch per node and bucket first: one row each, then one upsert statement.
    const buckets = new Map<
      string,
      {
        nodeId: string;
        bucket: number;
        n: number;
        cpu: number;
        cpuMax: number;
        load: number;
        mem: number;
        disk: number;
      }
    >();
    for (const { nodeId, ts, sample } of items) {
      const bucket = ts - (ts % width);
      const key = `${nodeId}|${bucket}`;
      const b = buckets.get(key) ?? { nodeId, bucket, n: 0, cpu: 0, cpuMax: 0, load: 0, mem: 0, disk: 0 };
      b.n++;
      b.cpu += sample.cpuPct;
      b.cpuMax = Math.max(b.cpuMax, sample.cpuPct);
      b.load += sample.load1;
      b.mem += sample.memUsedPct;
      b.disk = Math.max(b.disk, sample.diskUsedPct);
      buckets.set(key, b);
    }
    const table = rollup === 'minute' ? 'telemetry_minute' : 'telemetry_hour';
    await db
      .insertInto(table)
      .values(
        [...buckets.values()].map((b) => ({
          node_id: b.nodeId,
          bucket: b.bucket,
          samples: b.n,
          cpu_sum: b.cpu,
          cpu_max: b.cpuMax,
          load1_sum: b.load,
          mem_sum: b.mem,
          disk_max: b.disk,
        })),
      )
      .onConflict((oc) =>
        oc.columns(['node_id', 'bucket']).doUpdateSet((eb) => ({
          samples: sql`${sql.ref(`${table}.samples`)} + ${eb.ref('excluded.samples')}`,
          cpu_sum: sql`${sql.ref(`${table}.cpu_sum`)} + ${eb.ref('excluded.cpu_sum')}`,
          cpu_max: sql`case when ${eb.ref('excluded.cpu_max')} > ${sql.ref(`${table}.cpu_max`)} then ${eb.ref('excluded.cpu_max')} else ${sql.ref(`${table}.cpu_max`)} end`,
          load1_sum: sql`${sql.ref(`${table}.load1_sum`)} + ${eb.ref('excluded.load1_sum')}`,
          mem_sum: sql`${sql.ref(`${table}.mem_sum`)} + ${eb.ref('excluded.mem_sum')}`,
          disk_max: sql`case when ${eb.ref('excluded.disk_max')} > ${sql.ref(`${table}.disk_max`)} then ${eb.ref('excluded.disk_max')} else ${sql.ref(`${table}.disk_max`)} end`,
        })),
      )
      .execute();
  }
}

export interface Point extends Sample {
  ts: string;
  /** The highest CPU use inside a rollup bucket (equal to cpuPct for raw points). */
  cpuMaxPct: number;
  samples: number;
}

export async function readSeries(
  db: Kysely<Schema>,
  nodeId: string,
  step: 'raw' | Rollup,
  since: number,
  until: number,
  limit: number,
): Promise<Point[]> {
  if (step === 'raw') {
    const rows = await db
      .selectFrom('telemetry_raw')
      .selectAll()
      .where('node_id', '=', nodeId)
      .where('ts', '>=', since)
      .where('ts', '<', until)
      .orderBy('ts')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      ts: new Date(r.ts).toISOString(),
      cpuPct: r.cpu_pct,
      cpuMaxPct: r.cpu_pct,
      load1: r.load1,
      memUsedPct: r.mem_used_pct,
      diskUsedPct: r.disk_used_pct,
      samples: 1,
    }));
  }
  const table = step === 'minute' ? 'telemetry_minute' : 'telemetry_hour';
  const rows = await db
    .selectFrom(table)
    .selectAll()
    .where('node_id', '=', nodeId)
    .where('bucket', '>=', since - (since % ROLLUPS[step]))
    .where('bucket', '<', until)
    .orderBy('bucket')
    .limit(limit)
    .execute();
  const avg = (sum: number, n: number) => Math.round((sum / Math.max(1, n)) * 100) / 100;
  return rows.map((r) => ({
    ts: new Date(r.bucket).toISOString(),
    cpuPct: avg(r.cpu_sum, r.samples),
    cpuMaxPct: r.cpu_max,
    load1: avg(r.load1_sum, r.samples),
    memUsedPct: avg(r.mem_sum, r.samples),
    diskUsedPct: r.disk_max,
    samples: r.samples,
  }));
}

/** Deletes what is past each retention. */
export async function sweep(
  db: Kysely<Schema>,
  now: number,
  retention: { raw: number; minute: number; hour: number },
) {
  await db
    .deleteFrom('telemetry_raw')
    .where('ts', '<', now - retention.raw)
    .execute();
  await db
    .deleteFrom('telemetry_minute')
    .where('bucket', '<', now - retention.minute)
    .execute();
  await db
    .deleteFrom('telemetry_hour')
    .where('bucket', '<', now - retention.hour)
    .execute();
}
