import { type Kysely, type Migration, sql } from 'kysely';
import { autoIncrementKey, autoIncrementType, type MigrationDialect } from './dialect-v1.js';

/**
 * Tokens, nodes and certificates, and the decisions table that 0002 folds into the ledger.
 * Frozen once released: see index.ts.
 */
export function skeleton(dialect: MigrationDialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text')
        .addColumn('profile', 'text', (c) => c.notNull())
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('uses_total', 'integer', (c) => c.notNull())
        .addColumn('uses_left', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('nodes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('profile', 'text', (c) => c.notNull())
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('facts', 'text', (c) => c.notNull())
        .addColumn('token_id', 'text', (c) => c.notNull())
        .addColumn('enrolled_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint')
        .addColumn('latest', 'text')
        .addColumn('cert_serial', 'text', (c) => c.notNull())
        .addColumn('cert_not_after', 'bigint', (c) => c.notNull())
        .addColumn('cert_pem', 'text', (c) => c.notNull())
        .addColumn('decommissioned_at', 'bigint')
        .execute();
      // One active node per name; a decommissioned name may be enrolled again.
      await db.schema
        .createIndex('nodes_active_name')
        .on('nodes')
        .column('name')
        .unique()
        .where(sql.ref('decommissioned_at'), 'is', null)
        .execute();
      await db.schema.createIndex('nodes_cert_serial').on('nodes').column('cert_serial').execute();
      await db.schema.createIndex('nodes_profile_name').on('nodes').columns(['profile', 'name']).execute();

      await db.schema
        .createTable('certificates')
        .addColumn('serial', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull().references('nodes.id'))
        .addColumn('not_before', 'bigint', (c) => c.notNull())
        .addColumn('not_after', 'bigint', (c) => c.notNull())
        .addColumn('issued_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('certificates_node').on('certificates').column('node_id').execute();

      await db.schema
        .createTable('decisions')
        .addColumn('seq', autoIncrementType(dialect), (c) => autoIncrementKey(dialect)(c))
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
    },
  };
}
