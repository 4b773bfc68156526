import type { Kysely, Migration } from 'kysely';
import { autoIncrementKey, autoIncrementType, type MigrationDialect } from './dialect-v1.js';

/** The one table this migration writes to, as it made it. */
interface EventHead {
  event_head: { id: number; pruned_through: number };
}

/** The event stream and its pruning mark. Frozen once released: see index.ts. */
export function events(dialect: MigrationDialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('events')
        .addColumn('id', autoIncrementType(dialect), (c) => autoIncrementKey(dialect)(c))
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text')
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('events_ts').on('events').column('ts').execute();
      await db.schema.createIndex('events_kind').on('events').columns(['kind', 'id']).execute();
      await db.schema.createIndex('events_node').on('events').columns(['node_id', 'id']).execute();
      await db.schema
        .createTable('event_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('pruned_through', 'bigint', (c) => c.notNull())
        .execute();
      await (db as Kysely<EventHead>).insertInto('event_head').values({ id: 1, pruned_through: 0 }).execute();
    },
  };
}
