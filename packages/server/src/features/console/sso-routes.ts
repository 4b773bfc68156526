import { NoBody, SessionView, SsoCallbackRequest, SsoOptions, SsoStarted } from '@muster/proto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, NotFoundError, RateLimitedError } from '../../errors.js';
import type { CredentialRefusals } from '../../http/auth.js';
import type { AdminHosts } from '../../http/host-check.js';
import { type Limiter, sourceOf } from '../../http/rate-limit.js';
import type { CredentialService } from '../access/credentials.js';
import type { PeopleService } from '../access/people.js';
import { sameOrigin } from './guard.js';
import { sessionCookie, sessionView } from './routes.js';
import { cookieValue, SESSION_LIFETIME_MS, type SessionService } from './sessions.js';
import { SSO_COOKIE, SSO_LOGIN_LIFETIME_MS, SsoRefusal, SsoRefusedError, type SsoService } from './sso.js';

export interface SsoRouteDeps {
  /** Undefined when `--oidc-issuer` is not set: the sign-in page then offers no SSO. */
  sso: SsoService | undefined;
  issuer: string | undefined;
  sessions: Pick<SessionService, 'create'>;
  principals: Pick<CredentialService, 'bySession'>;
  people: Pick<PeopleService, 'userByEmail'>;
  hosts: AdminHosts;
  secureCookie: boolean;
  /** Records the `access.denied` event of a refused sign-on; returns its id. */
  recordRefusal(refusal: SsoRefusal, source: string): Promise<number>;
  refusals?: CredentialRefusals;
  /** Sign-ins one source may start: each is a row in the store until it expires. */
  starts?: Limiter;
}

/**
 * `/v1/session/sso`: console sign-in through the OpenID provider. Outside the admin guard, like
 * `POST /v1/session`: signing in is how a credential is got. Every refusal is an `access.denied`
 * event, counts against its source address as a wrong token does, and says why in one sentence.
 */
export function ssoRoutes(app: FastifyInstance, deps: SsoRouteDeps): void {
  const secure = deps.secureCookie ? '; Secure' : '';
  // Strict is enough: the browser comes back to a console page, whose own script finishes.
  const browserCookie = (value: string, maxAgeSec: number) =>
    `${SSO_COOKIE}=${value}; Path=/v1/session/sso; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${secure}`;
  const configured = (request: FastifyRequest): SsoService => {
    if (!sameOrigin(request, deps.hosts)) throw new ForbiddenError('sign in from the console itself', 'csrf');
    if (!deps.sso)
      throw new NotFoundError(
        'single sign-on is not configured on this server (--oidc-issuer)',
        'sso_not_configured',
      );
    return deps.sso;
  };

  app.get('/v1/session/sso', { schema: { response: { 200: SsoOptions }, security: [] } }, async () => ({
    enabled: deps.sso !== undefined,
    issuer: deps.issuer ?? null,
  }));
  app.post(
    '/v1/session/sso',
    { schema: { body: NoBody, response: { 201: SsoStarted }, security: [] } },
    async (request, reply) => {
      const sso = configured(request);
      const wait = (await deps.starts?.take(sourceOf(request.ip))) ?? 0;
      if (wait > 0)
        throw new RateLimitedError(`too many sign-ins started from this address; wait ${wait} s`, wait);
      const { url, browserSecret } = await sso.start();
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .header('set-cookie', browserCookie(browserSecret, SSO_LOGIN_LIFETIME_MS / 1000))
        .send({ url });
    },
  );
  app.post(
    '/v1/session/sso/callback',
    { schema: { body: SsoCallbackRequest, response: { 201: SessionView }, security: [] } },
    async (request, reply) => {
      const sso = configured(request);
      const { query } = request.body as SsoCallbackRequest;
      // The browser's sign-in is over either way: its cookie goes.
      reply.header('set-cookie', browserCookie('', 0));
      try {
        const { email, subject } = await sso.finish(query, cookieValue(request.headers.cookie, SSO_COOKIE));
        const user = await deps.people.userByEmail(email);
        if (!user)
          throw new SsoRefusal(
            'unknown_email',
            `no Muster user has the e-mail ${email}; an admin can give it to one with muster user set-email`,
            { email },
          );
        if (user.disabled)
          throw new SsoRefusal('disabled_user', `user ${user.name} is disabled`, { user: user.name, email });
        const credential = `sso:${subject}`.slice(0, 128);
        const principal = await deps.principals.bySession(user.name, credential);
        if (!principal)
          throw new SsoRefusal('disabled_user', `user ${user.name} is disabled`, { user: user.name, email });
        const session = await deps.sessions.create(principal.user, principal.credential);
        request.log.info(
          { session: session.idHash.slice(0, 12), user: principal.user, via: 'sso' },
          'console sign-in',
        );
        return reply
          .code(201)
          .header('set-cookie', [
            browserCookie('', 0),
            sessionCookie(session.secret, Math.floor(SESSION_LIFETIME_MS / 1000), deps.secureCookie),
          ])
          .send(sessionView(session));
      } catch (err) {
        if (!(err instanceof SsoRefusal)) throw err;
        request.log.warn(
          { reason: err.reason, user: err.facts.user },
          'security: console single sign-on refused',
        );
        const refused = new SsoRefusedError(err.message, await deps.recordRefusal(err, request.ip));
        // A sign-on refused for a known user (disabled) counts against them too.
        throw (await deps.refusals?.refuse(request.ip, refused, err.facts.user)) ?? refused;
      }
    },
  );
}
