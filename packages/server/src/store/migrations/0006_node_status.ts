import type { Kysely, Migration } from 'kysely';

/** The status last recorded for each node. Frozen once released: see index.ts. */
export const nodeStatus: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('nodes').addColumn('status_recorded', 'text').execute();
    await db.schema.alterTable('nodes').addColumn('status_recorded_at', 'bigint').execute();
  },
};
