import type { X509Certificate } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import type { NodeIdentity } from '../../identity.js';
import type { FleetRoots } from '../../pki/fleet.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';

export interface CertificateRecoveryDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
  roots: Pick<FleetRoots, 'trusted'>;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const NODE_ID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/**
 * Takes back a node whose newest certificate this store never saw: after a restore, a node that
 * renewed after the backup presents a certificate the restored server does not know.
 *
 * It is adopted as the node's current certificate when a root trusted now signed it, it is valid
 * now, it names (URI SAN) an active node, its serial is unknown here, and it is newer (notBefore)
 * than every certificate the store holds for that node. A superseded or revoked certificate is
 * known, so never adopted; a stolen older one is older, so refused as well. The adoption is a
 * ledger decision, `node.certificate_recovered`, and supersedes what the node held before.
 */
export class CertificateRecovery {
  constructor(private readonly deps: CertificateRecoveryDeps) {}

  /** The identity the certificate is adopted for, or undefined when it is refused. */
  async recover(cert: X509Certificate): Promise<NodeIdentity | undefined> {
    const claim = this.claim(cert);
    if (!claim) return undefined;
    const { db, write, clock, decisions } = this.deps;
    const known = await db
      .selectFrom('certificates')
      .select('serial')
      .where('serial', '=', claim.serial)
      .executeTakeFirst();
    if (known) return undefined;
    const now = clock.now();
    return write(async (trx) => {
      const node = await trx
        .selectFrom('nodes')
        .select(['id', 'name', 'cert_serial', 'pending_serial', 'rekey_requested_at'])
        .where('id', '=', claim.nodeId)
        .where('decommissioned_at', 'is', null)
        .executeTakeFirst();
      if (!node) return undefined;
      const identity = {
        id: node.id,
        name: node.name,
        serial: claim.serial,
        pending: false,
        rekeyRequested: node.rekey_requested_at !== null,
      };
      // Two first uses at once: the other one adopted it already.
      if (node.cert_serial === claim.serial) return identity;
      const newest = await trx
        .selectFrom('certificates')
        .select((eb) => eb.fn.max('not_before').as('notBefore'))
        .where('node_id', '=', node.id)
        .executeTakeFirst();
      if (newest?.notBefore != null && Number(newest.notBefore) >= claim.notBefore) return undefined;
      const adopted = await adopt(trx, node.id, node.cert_serial, claim, cert.toString(), now);
      if (!adopted) {
        // What changed in between may be this very adoption, by a first use that got there first.
        const held = await trx
          .selectFrom('nodes')
          .select('cert_serial')
          .where('id', '=', node.id)
          .where('decommissioned_at', 'is', null)
          .executeTakeFirst();
        return held?.cert_serial === claim.serial ? identity : undefined;
      }
      await decisions.record(trx, {
        kind: 'node.certificate_recovered',
        actor: `node:${node.id}`,
        subject: `node:${node.id}`,
        data: {
          serial: claim.serial,
          previousSerial: node.cert_serial,
          ...(node.pending_serial !== null ? { replacedPending: node.pending_serial } : {}),
          notBefore: claim.notBefore,
          notAfter: claim.notAfter,
        },
      });
      return identity;
    });
  }

  /** What the certificate says of itself, once a trusted root's signature vouches for it; else undefined. */
  private claim(cert: X509Certificate): Claim | undefined {
    const now = this.deps.clock.now();
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    if (!(notBefore <= now && now < notAfter) || cert.ca) return undefined;
    if (!(cert.keyUsage ?? []).includes(CLIENT_AUTH)) return undefined;
    const root = this.deps.roots
      .trusted()
      .find((ca) => ca.issued(cert) && cert.verify(ca.certificate.publicKey));
    if (!root) return undefined;
    const uris = (cert.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:'));
    const domain = root.trustDomain.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const match = new RegExp(`^URI:spiffe://${domain}/node/(${NODE_ID})$`).exec(uris[0] ?? '');
    if (uris.length !== 1 || !match) return undefined;
    return { nodeId: match[1]!, serial: cert.serialNumber.toLowerCase(), notBefore, notAfter };
  }
}

interface Claim {
  nodeId: string;
  serial: string;
  notBefore: number;
  notAfter: number;
}

/**
 * Makes the claimed certificate the node's current one, over the serial read before only (a
 * renewal or another adoption in between wins: false), and supersedes every certificate it held.
 */
async function adopt(
  trx: Kysely<Schema>,
  nodeId: string,
  previous: string,
  claim: Claim,
  pem: string,
  now: number,
): Promise<boolean> {
  const adopted = await trx
    .updateTable('nodes')
    .set({
      cert_serial: claim.serial,
      cert_not_after: claim.notAfter,
      cert_pem: pem,
      pending_serial: null,
      pending_not_after: null,
      pending_pem: null,
    })
    .where('id', '=', nodeId)
    .where('cert_serial', '=', previous)
    .where('decommissioned_at', 'is', null)
    .executeTakeFirst();
  if (Number(adopted.numUpdatedRows) !== 1) return false;
  await trx
    .updateTable('certificates')
    .set({ superseded_at: now })
    .where('node_id', '=', nodeId)
    .where('superseded_at', 'is', null)
    .where('revoked_at', 'is', null)
    .execute();
  await trx
    .insertInto('certificates')
    .values({
      serial: claim.serial,
      node_id: nodeId,
      not_before: claim.notBefore,
      not_after: claim.notAfter,
      // When this store learnt of it: the issuing itself was recorded in the store it replaced.
      issued_at: now,
      revoked_at: null,
      superseded_at: null,
      reuse_seen_at: null,
    })
    .execute();
  return true;
}
