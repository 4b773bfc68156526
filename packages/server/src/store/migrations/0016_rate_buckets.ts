import type { Kysely, Migration } from 'kysely';

/** Token buckets the replicas share, one row per limit and key. Frozen once released: see index.ts. */
export const rateBuckets: Migration = {
  async up(db: Kysely<unknown>) {
    // On PostgreSQL every replica takes from the same row, so a limit holds for the fleet.
    await db.schema
      .createTable('rate_buckets')
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('tokens', 'double precision', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      // When the bucket is full again: from then on the row says nothing and may go.
      .addColumn('full_at', 'bigint', (c) => c.notNull())
      .addColumn('granted', 'boolean', (c) => c.notNull())
      .addPrimaryKeyConstraint('rate_buckets_pk', ['scope', 'key'])
      .execute();
    await db.schema.createIndex('rate_buckets_full_at').on('rate_buckets').column('full_at').execute();
  },
};
