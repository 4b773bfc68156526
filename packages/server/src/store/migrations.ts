import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { appendEntries } from '../features/ledger/log.js';
import type { DialectTraits } from './dialect.js';
import type { Schema } from './schema.js';

/** Migrations are code and run at every start; each is applied once, in order. */
function migrations(traits: DialectTraits): Record<string, Migration> {
  return {
    '0001_skeleton': {
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
          .addColumn('seq', traits.autoIncrementType, (c) => traits.autoIncrementKey(c))
          .addColumn('ts', 'bigint', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0002_ledger': {
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
        const ledger = db as unknown as Kysely<Schema>;
        await ledger.insertInto('ledger_head').values({ id: 1, size: 0 }).execute();
        // The skeleton's decisions become the first ledger entries, in their order; then the
        // ledger is the only record of decisions.
        const old = await ledger.selectFrom('decisions').selectAll().orderBy('seq').execute();
        for (let i = 0; i < old.length; i += 500) {
          await appendEntries(
            ledger,
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
    },
    '0003_certificate_lifecycle': {
      async up(db: Kysely<unknown>) {
        // A renewed certificate waits as pending until the node first uses it; rotation asks
        // for a fresh key at the node's next contact.
        await db.schema.alterTable('nodes').addColumn('pending_serial', 'text').execute();
        await db.schema.alterTable('nodes').addColumn('pending_not_after', 'bigint').execute();
        await db.schema.alterTable('nodes').addColumn('pending_pem', 'text').execute();
        await db.schema.alterTable('nodes').addColumn('rekey_requested_at', 'bigint').execute();
        await db.schema.createIndex('nodes_pending_serial').on('nodes').column('pending_serial').execute();
        await db.schema.alterTable('certificates').addColumn('superseded_at', 'bigint').execute();
        await db.schema.alterTable('certificates').addColumn('reuse_seen_at', 'bigint').execute();
      },
    },
    '0004_events': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('events')
          .addColumn('id', traits.autoIncrementType, (c) => traits.autoIncrementKey(c))
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
        await (db as unknown as Kysely<Schema>)
          .insertInto('event_head')
          .values({ id: 1, pruned_through: 0 })
          .execute();
      },
    },
    '0005_telemetry': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('telemetry_raw')
          .addColumn('node_id', 'text', (c) => c.notNull())
          .addColumn('ts', 'bigint', (c) => c.notNull())
          .addColumn('cpu_pct', 'double precision', (c) => c.notNull())
          .addColumn('load1', 'double precision', (c) => c.notNull())
          .addColumn('mem_used_pct', 'double precision', (c) => c.notNull())
          .addColumn('disk_used_pct', 'double precision', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('telemetry_raw_node_ts')
          .on('telemetry_raw')
          .columns(['node_id', 'ts'])
          .execute();
        await db.schema.createIndex('telemetry_raw_ts').on('telemetry_raw').column('ts').execute();
        for (const table of ['telemetry_minute', 'telemetry_hour']) {
          await db.schema
            .createTable(table)
            .addColumn('node_id', 'text', (c) => c.notNull())
            .addColumn('bucket', 'bigint', (c) => c.notNull())
            .addColumn('samples', 'integer', (c) => c.notNull())
            .addColumn('cpu_sum', 'double precision', (c) => c.notNull())
            .addColumn('cpu_max', 'double precision', (c) => c.notNull())
            .addColumn('load1_sum', 'double precision', (c) => c.notNull())
            .addColumn('mem_sum', 'double precision', (c) => c.notNull())
            .addColumn('disk_max', 'double precision', (c) => c.notNull())
            .addPrimaryKeyConstraint(`${table}_pk`, ['node_id', 'bucket'])
            .execute();
          await db.schema.createIndex(`${table}_bucket`).on(table).column('bucket').execute();
        }
      },
    },
    '0006_node_status': {
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('nodes').addColumn('status_recorded', 'text').execute();
        await db.schema.alterTable('nodes').addColumn('status_recorded_at', 'bigint').execute();
      },
    },
    '0007_commands': {
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
        await db.schema
          .createIndex('commands_created')
          .on('commands')
          .columns(['created_at', 'id'])
          .execute();
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
    },
    '0008_ca_rotation': {
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
        await (db as unknown as Kysely<Schema>)
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
    },
    '0009_console_sessions': {
      async up(db: Kysely<unknown>) {
        // In the store, not in memory, so every replica behind one address knows every session.
        await db.schema
          .createTable('console_sessions')
          .addColumn('id_hash', 'text', (c) => c.primaryKey())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('console_sessions_expires')
          .on('console_sessions')
          .column('expires_at')
          .execute();
        await db.schema
          .createTable('console_signin_codes')
          .addColumn('code_hash', 'text', (c) => c.primaryKey())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('used_at', 'bigint')
          .execute();
      },
    },
    '0010_people': {
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
    },
  };
}

class CodeMigrations implements MigrationProvider {
  constructor(private readonly traits: DialectTraits) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.traits);
  }
}

/** Brings the schema up to date; safe to run from several replicas at once (the migrator locks). */
export async function migrate(db: Kysely<unknown>, traits: DialectTraits): Promise<void> {
  const migrator = new Migrator({ db, provider: new CodeMigrations(traits) });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const why = error instanceof Error ? error.message : String(error ?? failed?.migrationName);
    throw new Error(`database migration failed: ${why}`);
  }
}
