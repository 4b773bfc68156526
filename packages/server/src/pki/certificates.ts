import type { Kysely } from 'kysely';
import type { Schema } from '../store/schema.js';
import type { IssuedCertificate } from './ca.js';

/** Keeps a certificate just issued to a node, in the caller's transaction. */
export async function recordCertificate(
  trx: Kysely<Schema>,
  nodeId: string,
  issued: IssuedCertificate,
  now: number,
): Promise<void> {
  await trx
    .insertInto('certificates')
    .values({
      serial: issued.serial,
      node_id: nodeId,
      not_before: issued.notBefore,
      not_after: issued.notAfter,
      issued_at: now,
      revoked_at: null,
      superseded_at: null,
      reuse_seen_at: null,
    })
    .execute();
}
