import { LoginCode, LoginRequest, LoginResponse, NoBody, USER_NAME_PATTERN } from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { UnauthorizedError } from '../../errors.js';
import { type CredentialRefusals, RefusedCredentialError } from '../../http/auth.js';
import type { LoginService } from './login.js';
import type { UserCertificates } from './user-certificates.js';

const UserParams = Type.Object({ name: Type.String({ pattern: USER_NAME_PATTERN }) });

/**
 * `POST /v1/login`, outside the role guard: the code or the certificate presented is the
 * credential, checked here, and each refusal counts against its source and its user.
 */
export function loginRoutes(
  app: FastifyInstance,
  deps: { logins: LoginService; certificates: UserCertificates; refusals: CredentialRefusals },
): void {
  const { logins, certificates, refusals } = deps;
  app.post(
    '/v1/login',
    {
      schema: {
        body: LoginRequest,
        response: { 201: LoginResponse },
        // Like signing in to the console, this is how a credential is got: a first login's
        // code is checked here, and a renewal's certificate (userCertificate) by this route.
        security: [],
      },
    },
    async (request, reply) => {
      const body = request.body as LoginRequest;
      try {
        if (body.code !== undefined) return reply.code(201).send(await logins.redeem(body.code, body.csr));
        const principal = await certificates.principal(request);
        if (!principal)
          throw new UnauthorizedError(
            'give the login code an admin gave you (muster login --code CODE), or present the certificate of an earlier login',
            'login_required',
          );
        return reply.code(201).send(await logins.renew(principal, body.csr));
      } catch (err) {
        if (!(err instanceof UnauthorizedError)) throw err;
        throw await refusals.refuse(
          request.ip,
          err,
          err instanceof RefusedCredentialError ? err.user : undefined,
        );
      }
    },
  );
}

/** `POST /v1/users/:name/login-code`: a new one-time code for a user's next first login. */
export function loginCodeRoutes(app: FastifyInstance, logins: LoginService): void {
  app.post(
    '/v1/users/:name/login-code',
    {
      config: { access: { verb: 'update', resource: 'users' } },
      schema: { params: UserParams, body: NoBody, response: { 201: LoginCode } },
    },
    async (request, reply) =>
      reply.code(201).send(await logins.issueCode((request.params as { name: string }).name, request.actor)),
  );
}
