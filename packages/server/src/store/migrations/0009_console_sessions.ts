import type { Kysely, Migration } from 'kysely';

/** Console sessions and sign-in codes. Frozen once released: see index.ts. */
export const consoleSessions: Migration = {
  async up(db: Kysely<unknown>) {
    // In the store, not in memory, so every replica behind one address knows every session.
    await db.schema
      .createTable('console_sessions')
      .addColumn('id_hash', 'text', (c) => c.primaryKey())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('console_sessions_expires')
      .on('console_sessions')
      .column('expires_at')
      .execute();
    await db.schema
      .createTable('console_signin_codes')
      .addColumn('code_hash', 'text', (c) => c.primaryKey())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .execute();
  },
};
