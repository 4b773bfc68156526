import type { EnrollResponse, Facts, Labels } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock, IdSource } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { ConflictError } from '../../errors.js';
import type { IssuedCertificate } from '../../pki/ca.js';
import { recordCertificate } from '../../pki/certificates.js';
import type { FleetRoots } from '../../pki/fleet.js';
import type { Schema } from '../../store/schema.js';

/** What issuing a node from a request needs: the CA, the policy and who the agent is told to trust. */
export interface AdmitDeps {
  clock: Clock;
  ids: IdSource;
  decisions: DecisionRecorder;
  roots: Pick<FleetRoots, 'issuer' | 'presented' | 'bundle'>;
  certLifetimeMs: number;
  heartbeatIntervalMs: () => number;
  ledgerKey?: string;
  fleetRoot?: string;
}

/** A request an operator decided to let in, as the node it becomes. */
export interface Admitted {
  requestId: string;
  name: string;
  fingerprint: string;
  spki: Uint8Array;
  profile: string;
  labels: Labels;
  facts: Facts;
  /** How it came: queued by the agent (`request`) or signed from a file (`grant`). */
  via: 'request' | 'grant';
}

/** The certificate, built from server policy alone as for a token enrollment. */
export function issueFor(
  deps: AdmitDeps,
  admitted: Admitted,
  nodeId: string,
  now: number,
): IssuedCertificate {
  return deps.roots.issuer().issueNodeCertificate({
    spki: admitted.spki,
    name: admitted.name,
    nodeId,
    serial: deps.ids.serial(),
    now,
    lifetimeMs: deps.certLifetimeMs,
  });
}

/** An active node already holds the name: a request never takes it over. */
export async function refuseHeldName(db: Kysely<Schema>, name: string): Promise<void> {
  const held = await db
    .selectFrom('nodes')
    .select('id')
    .where('name', '=', name)
    .where('decommissioned_at', 'is', null)
    .executeTakeFirst();
  if (held)
    throw new ConflictError(
      `the name ${name} is held by node ${held.id}; decommission it first (muster nodes decommission ${name}) or ask under another --name`,
      'name_taken',
    );
}

/**
 * Inside the caller's transaction: the node, its certificate, and the decision that let it in,
 * whose actor is the operator who approved or signed it.
 */
export async function insertNode(
  trx: Kysely<Schema>,
  deps: Pick<AdmitDeps, 'decisions'>,
  admitted: Admitted,
  nodeId: string,
  issued: IssuedCertificate,
  actor: string,
  now: number,
): Promise<void> {
  const { name, profile, labels, facts } = admitted;
  await trx
    .insertInto('nodes')
    .values({
      id: nodeId,
      name,
      profile,
      labels: JSON.stringify(labels),
      facts: JSON.stringify(facts),
      // No join token let it in: the request did, and the column says which.
      token_id: `${admitted.via}:${admitted.requestId}`,
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
  await deps.decisions.record(trx, {
    kind: 'node.enrolled',
    actor,
    subject: `node:${nodeId}`,
    data: {
      name,
      profile,
      labels,
      serial: issued.serial,
      notAfter: issued.notAfter,
      facts,
      via: admitted.via,
      request: admitted.requestId,
      fingerprint: admitted.fingerprint,
    },
  });
}

/** What the agent receives once let in: the same answer a token enrollment gets. */
export function enrolledAnswer(
  deps: AdmitDeps,
  node: { nodeId: string; name: string; certPem: string; notAfter: number; profile: string; labels: Labels },
): EnrollResponse {
  const ca = deps.roots.issuer();
  return {
    nodeId: node.nodeId,
    name: node.name,
    certificate: node.certPem,
    caBundle: deps.roots.bundle(),
    notAfter: new Date(node.notAfter).toISOString(),
    trust: {
      caPin: deps.roots.presented().pin,
      trustDomain: ca.trustDomain,
      ...(deps.ledgerKey ? { ledgerKey: deps.ledgerKey } : {}),
      ...(deps.fleetRoot ? { fleetRoot: deps.fleetRoot } : {}),
    },
    profile: node.profile,
    labels: node.labels,
    heartbeatIntervalSec: Math.round(deps.heartbeatIntervalMs() / 1000),
  };
}
