import type { Kysely, Migration } from 'kysely';

/**
 * Jobs (CONTRACT section 9): the signed job with its signatures, where it stands, the ledger
 * sequence of its placement, and one row per shard: the node it runs on and how it answered.
 * Frozen once released: see index.ts.
 */
export const jobs: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('jobs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('nonce', 'text', (c) => c.notNull().unique())
      .addColumn('operator', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      // `{job, signature}` or `{job, signatures}` with every signature that counted.
      .addColumn('signed', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('approvals_required', 'integer', (c) => c.notNull())
      .addColumn('signer_count', 'integer', (c) => c.notNull())
      // The `job.placed` ledger entry; null while the job awaits approval.
      .addColumn('placed_seq', 'bigint')
      .addColumn('issued_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('stopped_at', 'bigint')
      .execute();
    await db.schema.createIndex('jobs_created').on('jobs').columns(['created_at', 'id']).execute();
    await db.schema
      .createTable('job_shards')
      .addColumn('job_id', 'text', (c) => c.notNull())
      .addColumn('shard', 'integer', (c) => c.notNull())
      .addColumn('node_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('receipt', 'text')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('job_shards_pk', ['job_id', 'shard'])
      .execute();
    await db.schema.createIndex('job_shards_node').on('job_shards').columns(['node_id', 'state']).execute();
  },
};
