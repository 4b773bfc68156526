import type { Kysely, Migration } from 'kysely';

/** Login codes and the personal client certificates `muster login` gets. Frozen once released: see index.ts. */
export const userCertificates: Migration = {
  async up(db: Kysely<unknown>) {
    // Only the code's hash is kept; a code is used once, then kept as used until it expires.
    await db.schema
      .createTable('login_codes')
      .addColumn('code_hash', 'text', (c) => c.primaryKey())
      .addColumn('user', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .execute();
    await db.schema.createIndex('login_codes_user').on('login_codes').column('user').execute();
    await db.schema
      .createTable('user_certificates')
      .addColumn('serial', 'text', (c) => c.primaryKey())
      .addColumn('user', 'text', (c) => c.notNull())
      .addColumn('not_before', 'bigint', (c) => c.notNull())
      .addColumn('not_after', 'bigint', (c) => c.notNull())
      .addColumn('issued_at', 'bigint', (c) => c.notNull())
      // The certificate a renewal replaced: superseded once the renewed one is first used.
      .addColumn('renewed_from', 'text')
      .addColumn('first_used_at', 'bigint')
      .addColumn('superseded_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .execute();
    await db.schema.createIndex('user_certificates_user').on('user_certificates').column('user').execute();
  },
};
