import type { Kysely, Migration } from 'kysely';

/** The one table this migration writes to, as it made it. */
interface CaRotation {
  ca_rotation: {
    id: number;
    state: string;
    old_serial: string | null;
    old_pem: string | null;
    new_serial: string | null;
    new_pem: string | null;
    started_at: number | null;
    finished_at: number | null;
  };
}

/** The fleet CA rotation state, one row. Frozen once released: see index.ts. */
export const caRotation: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('ca_rotation')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('old_serial', 'text')
      .addColumn('old_pem', 'text')
      .addColumn('new_serial', 'text')
      .addColumn('new_pem', 'text')
      .addColumn('started_at', 'bigint')
      .addColumn('finished_at', 'bigint')
      .execute();
    // One row from the start: starting a rotation is then one conditional update, which
    // exactly one of two racing replicas wins.
    await (db as Kysely<CaRotation>)
      .insertInto('ca_rotation')
      .values({
        id: 1,
        state: 'none',
        old_serial: null,
        old_pem: null,
        new_serial: null,
        new_pem: null,
        started_at: null,
        finished_at: null,
      })
      .execute();
  },
};
