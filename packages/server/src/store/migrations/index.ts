import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { Migrator } from 'kysely';
import type { DialectTraits } from '../dialect.js';
import { skeleton } from './0001_skeleton.js';
import { ledger } from './0002_ledger.js';
import { certificateLifecycle } from './0003_certificate_lifecycle.js';
import { events } from './0004_events.js';
import { telemetry } from './0005_telemetry.js';
import { nodeStatus } from './0006_node_status.js';
import { commands } from './0007_commands.js';
import { caRotation } from './0008_ca_rotation.js';
import { consoleSessions } from './0009_console_sessions.js';
import { people } from './0010_people.js';
import { nodeRequests } from './0011_node_requests.js';
import { userCertificates } from './0012_user_certificates.js';
import { dualControl } from './0013_dual_control.js';
import { sso } from './0014_sso.js';
import { jobs } from './0015_jobs.js';
import { rateBuckets } from './0016_rate_buckets.js';
import { requestNonces } from './0017_request_nonces.js';
import type { MigrationDialect } from './dialect-v1.js';

/*
 * Migrations are code and run at every start; each is applied once, in order of its name, which
 * is what Kysely's Migrator records in `kysely_migration` (so a name never changes).
 *
 * Each migration is frozen once released: one file, importing nothing from the rest of the
 * server, only kysely and the frozen helpers here (dialect-v1.ts, ledger-v1.ts). An old
 * database must be migrated by the code its migrations shipped as, not by today's features.
 * A change to the schema is a new file with the next number, added to the end of this list.
 */
export function migrations(dialect: MigrationDialect): Record<string, Migration> {
  return {
    '0001_skeleton': skeleton(dialect),
    '0002_ledger': ledger,
    '0003_certificate_lifecycle': certificateLifecycle,
    '0004_events': events(dialect),
    '0005_telemetry': telemetry,
    '0006_node_status': nodeStatus,
    '0007_commands': commands,
    '0008_ca_rotation': caRotation,
    '0009_console_sessions': consoleSessions,
    '0010_people': people,
    '0011_node_requests': nodeRequests,
    '0012_user_certificates': userCertificates,
    '0013_dual_control': dualControl,
    '0014_sso': sso,
    '0015_jobs': jobs,
    '0016_rate_buckets': rateBuckets(dialect),
    '0017_request_nonces': requestNonces,
  };
}

/** The list above, for Kysely's Migrator. */
export function migrationProvider(dialect: MigrationDialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}

/** Brings the schema up to date; safe to run from several replicas at once (the migrator locks). */
export async function migrate(db: Kysely<unknown>, traits: Pick<DialectTraits, 'name'>): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider(traits.name) });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const why = error instanceof Error ? error.message : String(error ?? failed?.migrationName);
    throw new Error(`database migration failed: ${why}`);
  }
}
