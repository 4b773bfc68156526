import type { Kysely, Migration } from 'kysely';

/** Users, custom roles and API tokens; sessions and sign-in codes belong to a user. Frozen once released: see index.ts. */
export const people: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('users')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('disabled_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('roles')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('spec', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('api_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user', 'text', (c) => c.notNull())
      .addColumn('name', 'text')
      .addColumn('role', 'text')
      .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('last_used_at', 'bigint')
      .execute();
    await db.schema.createIndex('api_tokens_user').on('api_tokens').column('user').execute();
    // A console session and a sign-in code belong to a user too; older rows were the admin's.
    for (const table of ['console_sessions', 'console_signin_codes']) {
      await db.schema
        .alterTable(table)
        .addColumn('user', 'text', (c) => c.notNull().defaultTo('admin'))
        .execute();
    }
    await db.schema
      .alterTable('console_sessions')
      .addColumn('credential', 'text', (c) => c.notNull().defaultTo('bootstrap'))
      .execute();
  },
};
