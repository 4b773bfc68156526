import type { Kysely, Migration } from 'kysely';

/**
 * The nonces of signed agent requests (CONTRACT section 12), kept until the signature they came
 * with could no longer pass the clock check, so a request replayed to any replica is refused.
 * Frozen once released: see index.ts.
 */
export const requestNonces: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('request_nonces')
      .addColumn('nonce', 'text', (c) => c.primaryKey())
      .addColumn('serial', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('request_nonces_expires').on('request_nonces').column('expires_at').execute();
  },
};
