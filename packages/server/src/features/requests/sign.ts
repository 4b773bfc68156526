import { randomBytes } from 'node:crypto';
import {
  type Facts,
  isNodeName,
  isProfile,
  type Labels,
  type NodeRequestBody,
  type SignedGrant,
  spkiFingerprint,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import { ConflictError, UnprocessableError } from '../../errors.js';
import { verifiedCsrKey } from '../../pki/csr.js';
import type { Schema } from '../../store/schema.js';
import { nameFromHostname } from '../enrollment/service.js';
import { DEFAULT_PROFILE } from '../tokens/service.js';
import { type Admitted, enrolledAnswer, insertNode, issueFor, refuseHeldName } from './admit.js';
import type { RequestServiceDeps } from './service.js';

/** A request as the CSR and the name it asks for make it, checked before anything is stored. */
export interface Asked {
  name: string;
  fingerprint: string;
  spki: Uint8Array;
  profile: string | undefined;
  labels: Labels;
  facts: Facts;
}

export function readAsked(body: NodeRequestBody): Asked {
  const name = body.name ?? nameFromHostname(body.facts.hostname);
  if (!isNodeName(name))
    throw new UnprocessableError(
      'node name must be 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit',
      'bad_name',
    );
  if (body.profile !== undefined && !isProfile(body.profile))
    throw new UnprocessableError(
      'profile must be lowercase letters, digits, dots, dashes or underscores',
      'bad_profile',
    );
  const spki = verifiedCsrKey(body.csr);
  return {
    name,
    spki,
    fingerprint: spkiFingerprint(spki),
    profile: body.profile,
    labels: body.labels ?? {},
    facts: body.facts,
  };
}

/** A node made in one transaction; two let in under one name at once, the unique index decides. */
export async function commitNode(
  deps: Pick<RequestServiceDeps, 'write' | 'traits'>,
  fn: (trx: Kysely<Schema>) => Promise<void>,
  name: string,
): Promise<void> {
  try {
    await deps.write(fn);
  } catch (err) {
    if (deps.traits.isUniqueViolation(err))
      throw new ConflictError(
        `the name ${name} is held by an active node, or this key was let in already`,
        'name_taken',
      );
    throw err;
  }
}

/** Signs a request file brought over by hand: the node exists at once, and a key is signed once. */
export async function signRequest(
  deps: RequestServiceDeps,
  body: NodeRequestBody,
  actor: string,
): Promise<SignedGrant> {
  const asked = readAsked(body);
  const now = deps.clock.now();
  const signed = await deps.db
    .selectFrom('node_requests')
    .select(['name', 'node_id'])
    .where('fingerprint', '=', asked.fingerprint)
    .where('status', '=', 'approved')
    .executeTakeFirst();
  if (signed)
    throw new ConflictError(
      `this key (${asked.fingerprint}) was already let in as node ${signed.name}; a request is signed once`,
      'already_signed',
    );
  await refuseHeldName(deps.db, asked.name);
  const requestId = `req_${randomBytes(16).toString('hex')}`;
  const admitted: Admitted = {
    ...asked,
    requestId,
    profile: asked.profile ?? DEFAULT_PROFILE,
    via: 'grant',
  };
  const nodeId = deps.ids.nodeId();
  const issued = issueFor(deps, admitted, nodeId, now);
  await commitNode(
    deps,
    async (trx) => {
      await trx
        .insertInto('node_requests')
        .values({
          id: requestId,
          name: asked.name,
          fingerprint: asked.fingerprint,
          csr: body.csr,
          profile: asked.profile ?? null,
          labels: JSON.stringify(asked.labels),
          facts: JSON.stringify(asked.facts),
          source: 'offline',
          status: 'approved',
          created_at: now,
          expires_at: now,
          decided_at: now,
          decided_by: actor,
          node_id: nodeId,
          cert_pem: issued.pem,
          not_after: issued.notAfter,
        })
        .execute();
      await insertNode(trx, deps, admitted, nodeId, issued, actor, now);
    },
    asked.name,
  );
  return {
    fingerprint: asked.fingerprint,
    server: deps.publicUrl(),
    enrolled: enrolledAnswer(deps, {
      nodeId,
      name: asked.name,
      certPem: issued.pem,
      notAfter: issued.notAfter,
      profile: admitted.profile,
      labels: asked.labels,
    }),
  };
}
