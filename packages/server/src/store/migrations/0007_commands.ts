import type { Kysely, Migration } from 'kysely';

/** Policies, operators, signed commands and their per-node targets. Frozen once released: see index.ts. */
export const commands: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('policies')
      .addColumn('version', 'bigint', (c) => c.primaryKey())
      .addColumn('document', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('operators')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('profiles', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('commands')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('nonce', 'text', (c) => c.notNull().unique())
      .addColumn('operator', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('signed', 'text', (c) => c.notNull())
      .addColumn('issued_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('commands_created').on('commands').columns(['created_at', 'id']).execute();
    await db.schema
      .createTable('command_targets')
      .addColumn('command_id', 'text', (c) => c.notNull())
      .addColumn('node_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('receipt', 'text')
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('command_targets_pk', ['command_id', 'node_id'])
      .execute();
    await db.schema
      .createIndex('command_targets_node_state')
      .on('command_targets')
      .columns(['node_id', 'state'])
      .execute();
    await db.schema
      .createIndex('command_targets_state_expiry')
      .on('command_targets')
      .columns(['state', 'expires_at'])
      .execute();
  },
};
