import type { EnrollRequest, Labels } from '@muster/proto';
import type { Kysely } from 'kysely';
import { ForbiddenError, UnauthorizedError } from '../../errors.js';
import type { Schema } from '../../store/schema.js';
import { DEFAULT_PROFILE, hashTokenSecret } from '../tokens/service.js';

/** One answer for unknown, used, expired and revoked tokens, so none can be told apart. */
export const BAD_TOKEN_MESSAGE = 'join token is not valid (unknown, used up, expired or revoked)';

/** The active node that holds a name an enrollment asks for. */
export interface NameHolder {
  id: string;
  serial: string;
  certNotAfter: number;
  profile: string;
  labels: Labels;
}

/** What an enrollment may become, decided from the token and the name before anything is signed. */
export interface Admission {
  token: { id: string; name: string | null };
  profile: string;
  labels: Labels;
  /** The active node holding the name, if any: the token may re-enroll it, or the request is refused. */
  holder?: NameHolder;
  /** The token was made for this very name (`muster token create --name`): it may replace its holder. */
  boundToName: boolean;
}

/**
 * Reads, without writing or signing anything, whether the token admits this enrollment and what
 * it makes of the node. A request with a bad token so costs one indexed read. The token is only
 * consumed later, in the enrollment's transaction, under the same conditions read here.
 */
export async function admit(
  db: Kysely<Schema>,
  request: EnrollRequest,
  name: string,
  now: number,
): Promise<Admission> {
  const token = await db
    .selectFrom('tokens')
    .select(['id', 'profile', 'labels', 'name'])
    .where('secret_hash', '=', hashTokenSecret(request.token))
    .where('uses_left', '>', 0)
    .where('expires_at', '>', now)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (!token) throw new UnauthorizedError(BAD_TOKEN_MESSAGE, 'bad_token');
  if (token.name !== null && token.name !== name) {
    throw new ForbiddenError(`this join token is for the node named ${token.name}`, 'token_name_mismatch');
  }
  if (
    request.profile !== undefined &&
    request.profile !== token.profile &&
    token.profile !== DEFAULT_PROFILE
  ) {
    throw new ForbiddenError(
      `this join token binds the node to profile ${token.profile}`,
      'token_profile_mismatch',
    );
  }
  const held = await db
    .selectFrom('nodes')
    .select(['id', 'cert_serial', 'cert_not_after', 'profile', 'labels'])
    .where('name', '=', name)
    .where('decommissioned_at', 'is', null)
    .executeTakeFirst();
  const holder: NameHolder | undefined = held && {
    id: held.id,
    serial: held.cert_serial,
    certNotAfter: held.cert_not_after,
    profile: held.profile,
    labels: JSON.parse(held.labels) as Labels,
  };
  const tokenLabels = JSON.parse(token.labels) as Labels;
  // A profile the token sets is the operator's; one it leaves open is the host's to ask for,
  // and a node enrolling again keeps the one it had.
  const openProfile = request.profile ?? holder?.profile ?? token.profile;
  return {
    token: { id: token.id, name: token.name },
    profile: token.profile !== DEFAULT_PROFILE ? token.profile : openProfile,
    // The token's labels win: a host may add labels, not override what an operator set, and a
    // node enrolling again keeps the labels it had over what its host now asks.
    labels: { ...(request.labels ?? {}), ...(holder?.labels ?? {}), ...tokenLabels },
    ...(holder ? { holder } : {}),
    boundToName: token.name === name,
  };
}
