import type { Kysely, Migration } from 'kysely';

/**
 * Operator keys belong to users; dual control: how many signatures a command needs, how many it
 * has, and each signature with who gave it. Frozen once released: see index.ts.
 */
export const dualControl: Migration = {
  async up(db: Kysely<unknown>) {
    // Null for keys registered before keys belonged to users.
    await db.schema.alterTable('operators').addColumn('user', 'text').execute();
    // Older commands needed one signature and had it.
    await db.schema
      .alterTable('commands')
      .addColumn('approvals_required', 'integer', (c) => c.notNull().defaultTo(1))
      .execute();
    await db.schema
      .alterTable('commands')
      .addColumn('signer_count', 'integer', (c) => c.notNull().defaultTo(1))
      .execute();
    await db.schema
      .createTable('command_signatures')
      .addColumn('command_id', 'text', (c) => c.notNull())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('operator', 'text', (c) => c.notNull())
      .addColumn('user', 'text')
      .addColumn('signature', 'text', (c) => c.notNull())
      .addColumn('signed_at', 'bigint', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      // One key signs a command once, however many names it is listed under.
      .addPrimaryKeyConstraint('command_signatures_pk', ['command_id', 'public_key'])
      .execute();
  },
};
