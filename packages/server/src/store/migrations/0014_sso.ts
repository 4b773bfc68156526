import type { Kysely, Migration } from 'kysely';

/** A user's e-mail, and the sign-ins under way at an identity provider. Frozen once released: see index.ts. */
export const sso: Migration = {
  async up(db: Kysely<unknown>) {
    // Single sign-on matches a user by their verified e-mail, so one address names one user.
    await db.schema.alterTable('users').addColumn('email', 'text').execute();
    await db.schema.createIndex('users_email').on('users').column('email').unique().execute();
    // In the store, not in memory: the identity provider may send the browser back to another replica.
    await db.schema
      .createTable('sso_logins')
      .addColumn('state_hash', 'text', (c) => c.primaryKey())
      .addColumn('browser_hash', 'text', (c) => c.notNull())
      .addColumn('nonce', 'text', (c) => c.notNull())
      .addColumn('code_verifier', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .execute();
    await db.schema.createIndex('sso_logins_expires').on('sso_logins').column('expires_at').execute();
  },
};
