import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import type { RefusedSerial } from '../../identity.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';

export interface NodeCertificatesDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
}

/** A node's certificates changing hands: a renewed one promoted, a superseded one seen again. */
export class NodeCertificates {
  constructor(private readonly deps: NodeCertificatesDeps) {}

  /**
   * The first use of a renewed certificate makes it current and supersedes the one before,
   * which is refused from then on. Concurrent first uses promote it once.
   */
  async promote(nodeId: string, serial: string): Promise<void> {
    const { write, clock, decisions } = this.deps;
    const now = clock.now();
    await write(async (trx) => {
      const node = await trx
        .selectFrom('nodes')
        .select(['cert_serial', 'pending_serial', 'pending_not_after', 'pending_pem'])
        .where('id', '=', nodeId)
        .where('pending_serial', '=', serial)
        .where('decommissioned_at', 'is', null)
        .executeTakeFirst();
      if (!node) return;
      await trx
        .updateTable('nodes')
        .set({
          cert_serial: serial,
          cert_not_after: node.pending_not_after!,
          cert_pem: node.pending_pem!,
          pending_serial: null,
          pending_not_after: null,
          pending_pem: null,
        })
        .where('id', '=', nodeId)
        .execute();
      await trx
        .updateTable('certificates')
        .set({ superseded_at: now })
        .where('serial', '=', node.cert_serial)
        .execute();
      await decisions.record(trx, {
        kind: 'node.certificate_activated',
        actor: `node:${nodeId}`,
        subject: `node:${nodeId}`,
        data: { serial, superseded: node.cert_serial },
      });
    });
  }

  /**
   * Looks at a serial the identity check refused. A superseded certificate presented again
   * means the identity may be in use on two hosts: that is recorded as a security decision
   * (at most once a minute per certificate, so a looping client cannot flood the record).
   */
  async noteRefusedSerial(serial: string): Promise<RefusedSerial> {
    const { db, write, clock, decisions } = this.deps;
    const cert = await db
      .selectFrom('certificates')
      .select(['node_id', 'superseded_at', 'reuse_seen_at', 'revoked_at'])
      .where('serial', '=', serial)
      .executeTakeFirst();
    if (!cert || cert.superseded_at === null || cert.revoked_at !== null) return 'other';
    const now = clock.now();
    if (cert.reuse_seen_at === null || now - cert.reuse_seen_at >= 60_000) {
      await write(async (trx) => {
        await trx
          .updateTable('certificates')
          .set({ reuse_seen_at: now })
          .where('serial', '=', serial)
          .execute();
        await decisions.record(trx, {
          kind: 'security.superseded_certificate_used',
          actor: `node:${cert.node_id}`,
          subject: `node:${cert.node_id}`,
          data: { serial, supersededAt: cert.superseded_at },
        });
      });
    }
    return 'superseded';
  }
}
