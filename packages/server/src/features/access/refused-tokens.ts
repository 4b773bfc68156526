import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { RefusedCredentialError } from '../../http/auth.js';
import type { Principal } from '../../identity.js';
import type { Schema } from '../../store/schema.js';

/**
 * Wraps the bearer resolver so that a token which is known but dead (expired, revoked, or of a
 * disabled user) is refused naming its user: those refusals then count against the user as well
 * as the source. The owner is looked up only on refusal, so valid requests pay nothing more.
 */
export function namingRefusedTokens(
  db: Kysely<Schema>,
  resolve: (secret: string) => Promise<Principal | undefined>,
): (secret: string) => Promise<Principal | undefined> {
  return async (secret) => {
    const principal = await resolve(secret);
    if (principal || secret.length === 0 || secret.length > 512) return principal;
    const user = await apiTokenOwner(db, secret);
    if (user === undefined) return undefined;
    throw new RefusedCredentialError(
      'a valid API token is required (Authorization: Bearer …)',
      'unauthorized',
      user,
    );
  };
}

/** The user a known API token secret belongs to, alive or dead; undefined for an unknown one. */
export async function apiTokenOwner(db: Kysely<Schema>, secret: string): Promise<string | undefined> {
  if (secret.length === 0 || secret.length > 512) return undefined;
  const row = await db
    .selectFrom('api_tokens')
    .select('user')
    .where('secret_hash', '=', createHash('sha256').update(secret).digest('hex'))
    .executeTakeFirst();
  return row?.user;
}
