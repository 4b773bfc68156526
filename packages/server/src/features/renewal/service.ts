import type { RenewResponse } from '@muster/proto';
import type { Clock, IdSource } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { BadRequestError, UnauthorizedError } from '../../errors.js';
import type { NodeIdentity } from '../../identity.js';
import { recordCertificate } from '../../pki/certificates.js';
import { verifiedCsr } from '../../pki/csr.js';
import type { FleetRoots } from '../../pki/fleet.js';
import type { Store } from '../../store/db.js';

export interface RenewalDeps {
  write: Store['write'];
  clock: Clock;
  ids: IdSource;
  decisions: DecisionRecorder;
  roots: Pick<FleetRoots, 'issuer' | 'bundle'>;
  certLifetimeMs: number;
}

/**
 * Renewal: a node that proves its identity gets a new certificate for the same name, with the
 * key it holds or a fresh one. The new certificate waits as pending until its first use, so a
 * renewal whose answer is lost leaves the node on its old certificate, still working.
 */
export class RenewalService {
  constructor(private readonly deps: RenewalDeps) {}

  /**
   * @param node who the verified client certificate says is asking
   * @param presentedSpki the public key of the certificate the node presented
   */
  async renew(node: NodeIdentity, csrPem: string, presentedSpki: Uint8Array): Promise<RenewResponse> {
    const { write, clock, ids, decisions, roots } = this.deps;
    const csr = verifiedCsr(csrPem);
    if (csr.commonNames.length !== 1 || csr.commonNames[0] !== node.name) {
      throw new BadRequestError(
        `a renewal request must be for this node's own name (${node.name}), and only for it`,
        'csr_name_mismatch',
      );
    }
    const rekeyed = !Buffer.from(csr.spki).equals(Buffer.from(presentedSpki));
    if (node.rekeyRequested && !rekeyed) {
      throw new BadRequestError(
        'an operator asked this node to move to a fresh key; renew with a new key',
        'rekey_required',
      );
    }
    const now = clock.now();
    // During a CA rotation the new root issues, which moves the node onto it.
    const issued = roots.issuer().issueNodeCertificate({
      spki: csr.spki,
      name: node.name,
      nodeId: node.id,
      serial: ids.serial(),
      now,
      lifetimeMs: this.deps.certLifetimeMs,
    });
    await write(async (trx) => {
      const row = await trx
        .selectFrom('nodes')
        .select(['cert_serial', 'pending_serial'])
        .where('id', '=', node.id)
        .where('decommissioned_at', 'is', null)
        .executeTakeFirst();
      // Decommissioned between the identity check and now: nothing is issued.
      if (!row) throw new UnauthorizedError('this identity is not current', 'identity_revoked');
      if (row.pending_serial !== null) {
        // A renewal that was never used is replaced; it can no longer become current.
        await trx
          .updateTable('certificates')
          .set({ revoked_at: now })
          .where('serial', '=', row.pending_serial)
          .execute();
      }
      await recordCertificate(trx, node.id, issued, now);
      await trx
        .updateTable('nodes')
        .set({
          pending_serial: issued.serial,
          pending_not_after: issued.notAfter,
          pending_pem: issued.pem,
          ...(rekeyed ? { rekey_requested_at: null } : {}),
        })
        .where('id', '=', node.id)
        .execute();
      await decisions.record(trx, {
        kind: 'node.renewed',
        actor: `node:${node.id}`,
        subject: `node:${node.id}`,
        data: {
          serial: issued.serial,
          previousSerial: node.serial,
          notAfter: issued.notAfter,
          rekeyed,
          ...(row.pending_serial !== null ? { replacedPending: row.pending_serial } : {}),
        },
      });
    });
    return {
      certificate: issued.pem,
      notAfter: new Date(issued.notAfter).toISOString(),
      caBundle: roots.bundle(),
    };
  }
}
