import { type Kysely, type Migration, sql } from 'kysely';
import type { MigrationDialect } from './dialect-v1.js';

/** Token buckets the replicas share, one row per limit and key. Frozen once released: see index.ts. */
export function rateBuckets(dialect: MigrationDialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      // On PostgreSQL every replica takes from the same row, so a limit holds for the fleet.
      // Unlogged there: a take writes no WAL and waits for no flush (`muster bench limits`: a
      // third of the logged table's cost); a crash of PostgreSQL empties the table, which only
      // gives every key its full burst again, and a standby starts with it empty.
      const create = db.schema.createTable('rate_buckets');
      await (dialect === 'postgres' ? create.modifyFront(sql`unlogged`) : create)
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('tokens', 'double precision', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        // When the bucket is full again: from then on the row says nothing and may go.
        .addColumn('full_at', 'bigint', (c) => c.notNull())
        // 1 when the last take was granted; an integer, as a backup carries no booleans.
        .addColumn('granted', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('rate_buckets_pk', ['scope', 'key'])
        .execute();
      await db.schema.createIndex('rate_buckets_full_at').on('rate_buckets').column('full_at').execute();
    },
  };
}
