import type { EnrollRequest, EnrollResponse, Facts } from '@muster/proto';
import { isNodeName, isProfile } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock, IdSource } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { ConflictError, UnauthorizedError, UnprocessableError } from '../../errors.js';
import type { LiveConnections } from '../../http/connections.js';
import type { IssuedCertificate } from '../../pki/ca.js';
import { recordCertificate } from '../../pki/certificates.js';
import { verifiedCsrKey } from '../../pki/csr.js';
import type { FleetRoots } from '../../pki/fleet.js';
import type { Store } from '../../store/db.js';
import type { DialectTraits } from '../../store/dialect.js';
import type { Schema } from '../../store/schema.js';
import { type Admission, admit, BAD_TOKEN_MESSAGE, type NameHolder } from './admission.js';

export { BAD_TOKEN_MESSAGE } from './admission.js';

export interface EnrollmentDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  /** The ledger's verifier key, which agents pin at enrollment to witness checkpoints. */
  ledgerKey?: string;
  /** The fleet root public key agents pin to check command policies. */
  fleetRoot?: string;
  traits: Pick<DialectTraits, 'isUniqueViolation'>;
  clock: Clock;
  ids: IdSource;
  decisions: DecisionRecorder;
  roots: Pick<FleetRoots, 'issuer' | 'presented' | 'bundle'>;
  /** A node enrolling again loses its old identity: its live connections are cut at once. */
  connections?: Pick<LiveConnections, 'cut'>;
  certLifetimeMs: number;
  /** The interval a new agent is told to report at. */
  heartbeatIntervalMs: () => number;
}

/**
 * Enrollment: a join token and a CSR become a node with a certificate built from policy alone.
 * A token made for a name (`muster token create --name`) enrolls the host holding it again:
 * the same node, with a new identity.
 */
export class EnrollmentService {
  constructor(private readonly deps: EnrollmentDeps) {}

  async enroll(request: EnrollRequest): Promise<EnrollResponse> {
    const { db, clock, ids, roots } = this.deps;
    const name = request.name !== undefined ? request.name : nameFromHostname(request.facts.hostname);
    if (!isNodeName(name)) {
      throw new UnprocessableError(
        'node name must be 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit',
        'bad_name',
      );
    }
    if (request.profile !== undefined && !isProfile(request.profile)) {
      throw new UnprocessableError(
        'profile must be lowercase letters, digits, dots, dashes or underscores',
        'bad_profile',
      );
    }
    const now = clock.now();
    // The token is judged before the CSR is verified or anything signed, so an enrollment
    // without a valid token costs a read, never a signature.
    const admitted = await admit(db, request, name, now);
    const { holder } = admitted;
    if (holder && !admitted.boundToName) await this.refuseTakeover(admitted.token.id, name, holder, now);
    const spki = verifiedCsrKey(request.csr);
    const ca = roots.issuer();
    const nodeId = holder?.id ?? ids.nodeId();
    // A signing failure throws here, before the transaction: the token stays unused.
    const issued = ca.issueNodeCertificate({
      spki,
      name,
      nodeId,
      serial: ids.serial(),
      now,
      lifetimeMs: this.deps.certLifetimeMs,
    });
    await this.commit(request.facts, name, nodeId, admitted, issued, now);
    if (holder) this.deps.connections?.cut(holder.id);

    return {
      nodeId,
      name,
      certificate: issued.pem,
      // Every root trusted now: during a rotation, the new one as well as the one pinned.
      caBundle: roots.bundle(),
      notAfter: new Date(issued.notAfter).toISOString(),
      trust: {
        // The root the join line pinned: the one behind the server's certificate.
        caPin: roots.presented().pin,
        trustDomain: ca.trustDomain,
        ...(this.deps.ledgerKey ? { ledgerKey: this.deps.ledgerKey } : {}),
        ...(this.deps.fleetRoot ? { fleetRoot: this.deps.fleetRoot } : {}),
      },
      profile: admitted.profile,
      labels: admitted.labels,
      heartbeatIntervalSec: Math.round(this.deps.heartbeatIntervalMs() / 1000),
    };
  }

  /**
   * A name held by an active node is never taken by a token that was not made for it, not even
   * once the holder's certificate has expired: that would hand its name-targeted commands to
   * whichever host asked first. The refusal is a security decision, since it may be one.
   */
  private async refuseTakeover(
    tokenId: string,
    name: string,
    holder: NameHolder,
    now: number,
  ): Promise<never> {
    await this.deps.write((trx) =>
      this.deps.decisions.record(trx, {
        kind: 'security.name_takeover_refused',
        actor: `token:${tokenId}`,
        subject: `node:${holder.id}`,
        data: { name, serial: holder.serial, certificateExpired: holder.certNotAfter <= now },
      }),
    );
    throw new ConflictError(
      `the name ${name} is held by node ${holder.id}; to enroll this host under it, make a token for that name ` +
        `(muster token create --name ${name}) or decommission the node first (muster nodes decommission ${name})`,
      'name_taken',
    );
  }

  /** Stores the node and its certificate and consumes the token, in one transaction. */
  private async commit(
    facts: Facts,
    name: string,
    nodeId: string,
    admitted: Admission,
    issued: IssuedCertificate,
    now: number,
  ): Promise<void> {
    const { write, traits, decisions } = this.deps;
    const { token, holder, profile, labels } = admitted;
    try {
      await write(async (trx) => {
        if (holder)
          await reenrollNode(trx, holder, { name, profile, labels, facts, tokenId: token.id }, issued, now);
        else
          await trx
            .insertInto('nodes')
            .values({
              id: nodeId,
              name,
              profile,
              labels: JSON.stringify(labels),
              facts: JSON.stringify(facts),
              token_id: token.id,
              enrolled_at: now,
              last_seen_at: null,
              latest: null,
              cert_serial: issued.serial,
              cert_not_after: issued.notAfter,
              cert_pem: issued.pem,
              decommissioned_at: null,
              pending_serial: null,
              pending_not_after: null,
              pending_pem: null,
              rekey_requested_at: null,
            })
            .execute();
        await recordCertificate(trx, nodeId, issued, now);
        // Consuming the token is one conditional update, made last so that on PostgreSQL the
        // token's row stays locked only until the commit: of N concurrent enrollments with a
        // one-use token, exactly one sees a row come back, and the others roll back.
        const consumed = await trx
          .updateTable('tokens')
          .set((eb) => ({ uses_left: eb('uses_left', '-', 1) }))
          .where('id', '=', token.id)
          .where('uses_left', '>', 0)
          .where('expires_at', '>', now)
          .where('revoked_at', 'is', null)
          .returning('id')
          .executeTakeFirst();
        if (!consumed) throw new UnauthorizedError(BAD_TOKEN_MESSAGE, 'bad_token');
        await decisions.record(trx, {
          kind: 'node.enrolled',
          actor: `token:${token.id}`,
          subject: `node:${nodeId}`,
          data: {
            name,
            profile,
            labels,
            serial: issued.serial,
            notAfter: issued.notAfter,
            facts,
            ...(holder ? { reenrolled: true, previousSerial: holder.serial } : {}),
          },
        });
      });
    } catch (err) {
      // Two enrollments racing for one name on different tokens: the unique index decides.
      if (traits.isUniqueViolation(err))
        throw new ConflictError(`the name ${name} is held by an active node`, 'name_taken');
      throw err;
    }
  }
}

/**
 * The node keeps its id, profile, labels and history and takes the new identity; every
 * certificate it held before is revoked, so the old one is refused from now on.
 */
async function reenrollNode(
  trx: Kysely<Schema>,
  holder: NameHolder,
  node: { name: string; profile: string; labels: object; facts: Facts; tokenId: string },
  issued: IssuedCertificate,
  now: number,
): Promise<void> {
  const updated = await trx
    .updateTable('nodes')
    .set({
      profile: node.profile,
      labels: JSON.stringify(node.labels),
      facts: JSON.stringify(node.facts),
      token_id: node.tokenId,
      cert_serial: issued.serial,
      cert_not_after: issued.notAfter,
      cert_pem: issued.pem,
      pending_serial: null,
      pending_not_after: null,
      pending_pem: null,
      rekey_requested_at: null,
    })
    // Only the identity read at admission is replaced: a renewal or a decommission that came
    // in between wins, and this enrollment is refused instead.
    .where('id', '=', holder.id)
    .where('cert_serial', '=', holder.serial)
    .where('decommissioned_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  if (!updated) {
    throw new ConflictError(`node ${node.name} changed while it enrolled again; retry`, 'name_taken');
  }
  await trx
    .updateTable('certificates')
    .set({ revoked_at: now })
    .where('node_id', '=', holder.id)
    .where('revoked_at', 'is', null)
    .execute();
}

/** A host's name made into a node name when none was asked for: `Web_01.example` → `web-01`. */
export function nameFromHostname(hostname: string): string {
  return hostname
    .split('.')[0]!
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
}
