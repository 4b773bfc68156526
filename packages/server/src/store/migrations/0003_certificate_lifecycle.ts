import type { Kysely, Migration } from 'kysely';

/** Pending renewals, key rotation and certificate reuse detection. Frozen once released: see index.ts. */
export const certificateLifecycle: Migration = {
  async up(db: Kysely<unknown>) {
    // A renewed certificate waits as pending until the node first uses it; rotation asks
    // for a fresh key at the node's next contact.
    await db.schema.alterTable('nodes').addColumn('pending_serial', 'text').execute();
    await db.schema.alterTable('nodes').addColumn('pending_not_after', 'bigint').execute();
    await db.schema.alterTable('nodes').addColumn('pending_pem', 'text').execute();
    await db.schema.alterTable('nodes').addColumn('rekey_requested_at', 'bigint').execute();
    await db.schema.createIndex('nodes_pending_serial').on('nodes').column('pending_serial').execute();
    await db.schema.alterTable('certificates').addColumn('superseded_at', 'bigint').execute();
    await db.schema.alterTable('certificates').addColumn('reuse_seen_at', 'bigint').execute();
  },
};
