import type { Kysely, Migration } from 'kysely';

/** Raw telemetry and its minute and hour rollups. Frozen once released: see index.ts. */
export const telemetry: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('telemetry_raw')
      .addColumn('node_id', 'text', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('cpu_pct', 'double precision', (c) => c.notNull())
      .addColumn('load1', 'double precision', (c) => c.notNull())
      .addColumn('mem_used_pct', 'double precision', (c) => c.notNull())
      .addColumn('disk_used_pct', 'double precision', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('telemetry_raw_node_ts')
      .on('telemetry_raw')
      .columns(['node_id', 'ts'])
      .execute();
    await db.schema.createIndex('telemetry_raw_ts').on('telemetry_raw').column('ts').execute();
    for (const table of ['telemetry_minute', 'telemetry_hour']) {
      await db.schema
        .createTable(table)
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('bucket', 'bigint', (c) => c.notNull())
        .addColumn('samples', 'integer', (c) => c.notNull())
        .addColumn('cpu_sum', 'double precision', (c) => c.notNull())
        .addColumn('cpu_max', 'double precision', (c) => c.notNull())
        .addColumn('load1_sum', 'double precision', (c) => c.notNull())
        .addColumn('mem_sum', 'double precision', (c) => c.notNull())
        .addColumn('disk_max', 'double precision', (c) => c.notNull())
        .addPrimaryKeyConstraint(`${table}_pk`, ['node_id', 'bucket'])
        .execute();
      await db.schema.createIndex(`${table}_bucket`).on(table).column('bucket').execute();
    }
  },
};
