import { roleWithin, SignInLinkCreated, SignInLinkRequest, USER_NAME_PATTERN } from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { ConflictError, ForbiddenError } from '../../errors.js';
import type { PeopleService } from '../access/people.js';
import type { SessionService } from './sessions.js';

const UserParams = Type.Object({ name: Type.String({ pattern: USER_NAME_PATTERN }) });

/**
 * `POST /v1/users/:name/links` (`muster user link NAME`): a one-time console sign-in link for
 * another user, made by someone who manages users. Signing in with it acts as that user, with
 * their role, so it is a ledger decision naming who asked and for whom.
 */
export function userLinkRoutes(
  app: FastifyInstance,
  deps: {
    sessions: Pick<SessionService, 'issueCode'>;
    people: Pick<PeopleService, 'getUser' | 'role'>;
    db: Parameters<PeopleService['role']>[0];
    decisions: DecisionRecorder;
  },
): void {
  app.post(
    '/v1/users/:name/links',
    {
      config: { access: { verb: 'update', resource: 'users' } },
      schema: { params: UserParams, body: SignInLinkRequest, response: { 201: SignInLinkCreated } },
    },
    async (request, reply) => {
      const name = (request.params as { name: string }).name;
      const by = request.principal!;
      // A console session may not mint a session for its own user that outlives it.
      if (request.consoleSession !== null && name === by.user)
        throw new ForbiddenError(
          'a sign-in link for yourself is made with an API token (muster console link), not from the console',
          'admin_only',
        );
      const user = await deps.people.getUser(name);
      if (user.disabled)
        throw new ConflictError(
          `user ${name} is disabled; enable them before making a sign-in link`,
          'user_disabled',
        );
      // A link lends the user's role: never more than the asker's own.
      const role = await deps.people.role(deps.db, user.role);
      const ceiling = by.roles.find((mine) => !roleWithin(role, mine));
      if (ceiling)
        await request.denyAccess!(`role ${ceiling.name} may not make a sign-in link for role ${role.name}`);
      const { code, expiresAt } = await deps.sessions.issueCode(name, (trx, at) =>
        deps.decisions.record(trx, {
          kind: 'user.link_issued',
          actor: request.actor,
          subject: `user:${name}`,
          data: { expiresAt: new Date(at).toISOString() },
        }),
      );
      request.log.info({ user: name }, 'console sign-in link issued'); // never the code itself
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({ code, path: `/#code=${code}`, expiresAt: new Date(expiresAt).toISOString() });
    },
  );
}
