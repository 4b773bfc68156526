import { USER_NAME_PATTERN, UserCertificatesRevoked, UserCertificatesRevokeRequest } from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { NotFoundError } from '../../errors.js';
import type { Schema } from '../../store/schema.js';
import type { PeopleDeps } from './people.js';

/**
 * Marks a user's current personal certificates revoked (one, given its serial): the check on
 * every request refuses them from the next one on, on every replica, and nothing revives them.
 * Expired and superseded ones are left as they are: they are refused already.
 */
export async function revokeUserCertificates(
  trx: Kysely<Schema>,
  user: string,
  now: number,
  serial?: string,
): Promise<string[]> {
  let current = trx
    .selectFrom('user_certificates')
    .select('serial')
    .where('user', '=', user)
    .where('revoked_at', 'is', null)
    .where('superseded_at', 'is', null)
    .where('not_after', '>', now);
  if (serial !== undefined) current = current.where('serial', '=', serial);
  const serials = (await current.orderBy('serial').execute()).map((row) => row.serial);
  if (serials.length > 0)
    await trx
      .updateTable('user_certificates')
      .set({ revoked_at: now })
      .where('serial', 'in', serials)
      .execute();
  return serials;
}

/**
 * What a person holds besides API tokens, ended when they are disabled: console sessions, and
 * login codes and sign-in links not yet used. Enabling them again is then a fresh start (a new
 * login code or link), not the return of whatever was lying around. Returns the sessions ended.
 */
export async function endPersonalCredentials(trx: Kysely<Schema>, user: string): Promise<number> {
  const sessions = await trx.deleteFrom('console_sessions').where('user', '=', user).executeTakeFirst();
  await trx.deleteFrom('login_codes').where('user', '=', user).where('used_at', 'is', null).execute();
  await trx
    .deleteFrom('console_signin_codes')
    .where('user', '=', user)
    .where('used_at', 'is', null)
    .execute();
  return Number(sessions.numDeletedRows);
}

/** `muster user revoke-certs NAME [--serial S]`: revoking a user's certificates, a ledger decision. */
export async function revokeCertificates(
  deps: PeopleDeps,
  user: string,
  serial: string | undefined,
  actor: string,
): Promise<UserCertificatesRevoked> {
  const { write, clock, decisions } = deps;
  const wanted = serial?.toLowerCase();
  return write(async (trx) => {
    const row = await trx.selectFrom('users').select('name').where('name', '=', user).executeTakeFirst();
    if (!row) throw new NotFoundError(`no user named ${user}`, 'no_user');
    if (wanted !== undefined) {
      const cert = await trx
        .selectFrom('user_certificates')
        .select('serial')
        .where('serial', '=', wanted)
        .where('user', '=', user)
        .executeTakeFirst();
      if (!cert)
        throw new NotFoundError(`user ${user} has no certificate with serial ${wanted}`, 'no_certificate');
    }
    const revoked = await revokeUserCertificates(trx, user, clock.now(), wanted);
    if (revoked.length > 0)
      await decisions.record(trx, {
        kind: 'user.certificates_revoked',
        actor,
        subject: `user:${user}`,
        data: { serials: revoked, ...(wanted !== undefined ? { serial: wanted } : { all: true }) },
      });
    return { user, revoked };
  });
}

const UserParams = Type.Object({ name: Type.String({ pattern: USER_NAME_PATTERN }) });

/** `POST /v1/users/:name/certificates/revoke`, behind the role guard: whoever may update users. */
export function certificateRevocationRoutes(app: FastifyInstance, deps: PeopleDeps): void {
  app.post(
    '/v1/users/:name/certificates/revoke',
    {
      config: { access: { verb: 'update', resource: 'users' } },
      schema: {
        params: UserParams,
        body: UserCertificatesRevokeRequest,
        response: { 200: UserCertificatesRevoked },
      },
    },
    async (request) =>
      revokeCertificates(
        deps,
        (request.params as { name: string }).name,
        (request.body as UserCertificatesRevokeRequest | undefined)?.serial,
        request.actor,
      ),
  );
}
