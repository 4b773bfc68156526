import type { EnrollRequest, EnrollResponse, Labels } from '@muster/proto';
import { isNodeName, isProfile } from '@muster/proto';
import type { Clock, IdSource } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { ConflictError, ForbiddenError, UnauthorizedError, UnprocessableError } from '../../errors.js';
import { recordCertificate } from '../../pki/certificates.js';
import { verifiedCsrKey } from '../../pki/csr.js';
import type { FleetRoots } from '../../pki/fleet.js';
import type { Store } from '../../store/db.js';
import type { DialectTraits } from '../../store/dialect.js';
import { DEFAULT_PROFILE, hashTokenSecret } from '../tokens/service.js';

export interface EnrollmentDeps {
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
  certLifetimeMs: number;
  /** The interval a new agent is told to report at. */
  heartbeatIntervalMs: () => number;
}

/** One answer for unknown, used, expired and revoked tokens, so none can be told apart. */
export const BAD_TOKEN_MESSAGE = 'join token is not valid (unknown, used up, expired or revoked)';

/** Enrollment: a join token and a CSR become a node with a certificate built from policy alone. */
export class EnrollmentService {
  constructor(private readonly deps: EnrollmentDeps) {}

  async enroll(request: EnrollRequest): Promise<EnrollResponse> {
    const { write, traits, clock, ids, decisions, roots } = this.deps;
    const ca = roots.issuer();
    // Everything that can be refused without the token is checked first, so a bad request
    // never uses a token up.
    const spki = verifiedCsrKey(request.csr);
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
    const nodeId = ids.nodeId();
    const now = clock.now();
    const issued = ca.issueNodeCertificate({
      spki,
      name,
      nodeId,
      serial: ids.serial(),
      now,
      lifetimeMs: this.deps.certLifetimeMs,
    });

    let enrolledAs: { profile: string; labels: Labels } | undefined;
    try {
      await write(async (trx) => {
        const secretHash = hashTokenSecret(request.token);
        const token = await trx
          .selectFrom('tokens')
          .select(['id', 'profile', 'labels', 'name'])
          .where('secret_hash', '=', secretHash)
          .where('uses_left', '>', 0)
          .where('expires_at', '>', now)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        if (!token) throw new UnauthorizedError(BAD_TOKEN_MESSAGE, 'bad_token');
        if (token.name !== null && token.name !== name) {
          throw new ForbiddenError(
            `this join token is for the node named ${token.name}`,
            'token_name_mismatch',
          );
        }
        let profile = token.profile;
        if (request.profile !== undefined && request.profile !== token.profile) {
          if (token.profile !== DEFAULT_PROFILE) {
            throw new ForbiddenError(
              `this join token binds the node to profile ${token.profile}`,
              'token_profile_mismatch',
            );
          }
          profile = request.profile;
        }
        // The token's labels win: a host may add labels, not override what the operator set.
        const labels = { ...(request.labels ?? {}), ...(JSON.parse(token.labels) as Labels) };
        enrolledAs = { profile, labels };
        const held = await trx
          .selectFrom('nodes')
          .select(['id', 'cert_serial', 'cert_not_after', 'pending_not_after'])
          .where('name', '=', name)
          .where('decommissioned_at', 'is', null)
          .executeTakeFirst();
        if (held) {
          // A node whose every certificate has expired can no longer prove anything: a host with
          // a new join token may take its name back (the agent that lost its identity, re-enrolling).
          if (Math.max(held.cert_not_after, held.pending_not_after ?? 0) > now)
            throw new ConflictError(`the name ${name} is held by an active node`, 'name_taken');
          await trx.updateTable('nodes').set({ decommissioned_at: now }).where('id', '=', held.id).execute();
          await trx
            .updateTable('certificates')
            .set({ revoked_at: now })
            .where('node_id', '=', held.id)
            .where('revoked_at', 'is', null)
            .execute();
          await decisions.record(trx, {
            kind: 'node.replaced',
            actor: `token:${token.id}`,
            subject: `node:${held.id}`,
            data: { name, serial: held.cert_serial, expiredAt: held.cert_not_after, replacedBy: nodeId },
          });
        }
        await trx
          .insertInto('nodes')
          .values({
            id: nodeId,
            name,
            profile,
            labels: JSON.stringify(labels),
            facts: JSON.stringify(request.facts),
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
            facts: request.facts,
          },
        });
      });
    } catch (err) {
      // Two enrollments racing for one name on different tokens: the unique index decides.
      if (traits.isUniqueViolation(err))
        throw new ConflictError(`the name ${name} is held by an active node`, 'name_taken');
      throw err;
    }

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
      profile: enrolledAs!.profile,
      labels: enrolledAs!.labels,
      heartbeatIntervalSec: Math.round(this.deps.heartbeatIntervalMs() / 1000),
    };
  }
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
