import type { Kysely, Migration } from 'kysely';
import { appendEntriesV1, type LedgerTablesV1 } from './ledger-v1.js';

/** The skeleton's decisions table, as 0001 made it, beside the ledger tables made here. */
interface Tables extends LedgerTablesV1 {
  decisions: { seq: number; ts: number; kind: string; actor: string; subject: string; data: string };
}

/**
 * The transparency ledger (an RFC 6962 log); the skeleton's decisions become its first entries,
 * hashed with the frozen copy in ledger-v1.ts, never the live ledger code, so an old database
 * migrated today gets the log 0.1.0 would have written. Frozen once released: see index.ts.
 */
export const ledger: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('ledger_head')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('ledger_entries')
      .addColumn('seq', 'bigint', (c) => c.primaryKey())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('entry', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('ledger_entries_kind')
      .on('ledger_entries')
      .columns(['kind', 'seq'])
      .execute();
    await db.schema
      .createIndex('ledger_entries_subject')
      .on('ledger_entries')
      .columns(['subject', 'seq'])
      .execute();
    await db.schema
      .createTable('ledger_nodes')
      .addColumn('level', 'integer', (c) => c.notNull())
      .addColumn('idx', 'bigint', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('ledger_nodes_pk', ['level', 'idx'])
      .execute();
    await db.schema
      .createTable('ledger_checkpoints')
      .addColumn('size', 'bigint', (c) => c.primaryKey())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('note', 'text', (c) => c.notNull())
      .execute();
    const ledger = db as Kysely<Tables>;
    await ledger.insertInto('ledger_head').values({ id: 1, size: 0 }).execute();
    // The skeleton's decisions become the first ledger entries, in their order; then the
    // ledger is the only record of decisions.
    const old = await ledger.selectFrom('decisions').selectAll().orderBy('seq').execute();
    for (let i = 0; i < old.length; i += 500) {
      await appendEntriesV1(
        db,
        old.slice(i, i + 500).map((d) => ({
          ts: d.ts,
          kind: d.kind,
          actor: d.actor,
          subject: d.subject,
          data: JSON.parse(d.data) as Record<string, unknown>,
        })),
      );
    }
    await db.schema.dropTable('decisions').execute();
  },
};
