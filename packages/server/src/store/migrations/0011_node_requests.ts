import { type Kysely, type Migration, sql } from 'kysely';

/**
 * Enrollment requests: hosts that asked to join without a token, waiting for an operator, and
 * the offline requests an operator signed. Frozen once released: see index.ts.
 */
export const nodeRequests: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('node_requests')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('fingerprint', 'text', (c) => c.notNull())
      .addColumn('csr', 'text', (c) => c.notNull())
      .addColumn('profile', 'text')
      .addColumn('labels', 'text', (c) => c.notNull())
      .addColumn('facts', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('decided_at', 'bigint')
      .addColumn('decided_by', 'text')
      .addColumn('node_id', 'text')
      .addColumn('cert_pem', 'text')
      .addColumn('not_after', 'bigint')
      .execute();
    // One pending request per name: two replicas taking one name at once, the index decides.
    await db.schema
      .createIndex('node_requests_pending_name')
      .on('node_requests')
      .column('name')
      .unique()
      .where(sql.ref('status'), '=', 'pending')
      .execute();
    await db.schema
      .createIndex('node_requests_status_expires')
      .on('node_requests')
      .columns(['status', 'expires_at'])
      .execute();
    // A key is let in once: two signatures of one request file at once, the index decides.
    await db.schema
      .createIndex('node_requests_approved_fingerprint')
      .on('node_requests')
      .column('fingerprint')
      .unique()
      .where(sql.ref('status'), '=', 'approved')
      .execute();
  },
};
