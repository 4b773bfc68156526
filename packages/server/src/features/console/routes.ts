import {
  FleetSummary,
  NoBody,
  SessionCreateRequest,
  SessionView,
  SignInLinkCreated,
  SignInLinkRequest,
} from '@muster/proto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '../../errors.js';
import { type CredentialRefusals, RefusedCredentialError } from '../../http/auth.js';
import type { AdminHosts } from '../../http/host-check.js';
import { sendProblem } from '../../http/problems.js';
import type { Principal } from '../../identity.js';
import type { CredentialService } from '../access/credentials.js';
import type { Asset } from './assets.js';
import { sameOrigin, sessionCredential } from './guard.js';
import {
  type ConsoleSession,
  cookieValue,
  SESSION_COOKIE,
  SESSION_LIFETIME_MS,
  type SessionService,
} from './sessions.js';

/** The console's pages: each answers with the console, which shows sign-in when there is no session. */
export const CONSOLE_PAGES = [
  '/',
  '/signin',
  '/signin/sso',
  '/nodes',
  '/nodes/:id',
  '/events',
  '/commands',
  '/commands/:id',
  '/tokens',
  '/ledger',
  '/users',
];

/**
 * No inline script or style, nothing from elsewhere: whatever text a node or an operator puts in
 * a name, label or note, the browser runs only the console's own files.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The `Set-Cookie` of a console session (an empty value and 0 end it). */
export function sessionCookie(value: string, maxAgeSec: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${secure ? '; Secure' : ''}`;
}

/** A session as the console is told of it. */
export function sessionView(session: Pick<ConsoleSession, 'csrf' | 'expiresAt'>): SessionView {
  return { csrf: session.csrf, expiresAt: new Date(session.expiresAt).toISOString() };
}

/** The user a refused sign-in's token or code belongs to, if it is known at all. */
async function refusedOwner(
  body: SessionCreateRequest,
  principals: Pick<CredentialService, 'ownerOf'>,
  sessions: Pick<SessionService, 'codeOwner'>,
): Promise<string | undefined> {
  if (body.code !== undefined) return sessions.codeOwner(body.code);
  return body.token === undefined ? undefined : principals.ownerOf(body.token);
}

/** Static files, sign-in and sign-out: the console's routes outside the admin guard. */
export function consoleRoutes(
  app: FastifyInstance,
  deps: {
    assets: Map<string, Asset> | undefined;
    sessions: SessionService;
    /** Resolves an API token given at sign-in, and the user behind a session. */
    principals: Pick<CredentialService, 'byBearer' | 'bySession' | 'ownerOf'>;
    /** Whether the cookie must be `Secure`: the browser reaches the admin plane over HTTPS. */
    secureCookie: boolean;
    /** The admin plane's names, which a console request's `Origin` must carry. */
    hosts: AdminHosts;
    /** Wrong tokens and codes count against their source address, as bearer tokens do. */
    refusals?: CredentialRefusals;
  },
): void {
  const { assets, sessions } = deps;
  const send = (request: FastifyRequest, reply: FastifyReply, asset: Asset, cache: string) => {
    reply
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cache-control', cache)
      .header('vary', 'accept-encoding')
      .type(asset.type);
    if (asset.gzip && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) {
      return reply.header('content-encoding', 'gzip').send(asset.gzip);
    }
    return reply.send(asset.body);
  };
  const notBuilt = (reply: FastifyReply) =>
    sendProblem(
      reply,
      503,
      'console_not_built',
      'the console was not built; run `npm run build` in the Muster checkout',
    );

  for (const page of CONSOLE_PAGES) {
    app.get(page, { config: { notApi: true } }, async (request, reply) => {
      const index = assets?.get('/index.html');
      // no-store: after sign-out, the back button must not bring a page back from any cache.
      return index ? send(request, reply, index, 'no-store') : notBuilt(reply);
    });
  }
  app.get('/assets/*', { config: { notApi: true } }, async (request, reply) => {
    const asset = assets?.get(request.url.split('?')[0]!);
    if (!asset) return sendProblem(reply, 404, 'not_found', 'no such console file');
    // Vite names every file by its content hash, so a name never changes meaning.
    return send(request, reply, asset, 'public, max-age=31536000, immutable');
  });

  const cookie = (value: string, maxAgeSec: number) => sessionCookie(value, maxAgeSec, deps.secureCookie);
  const view = sessionView;
  const current = async (request: FastifyRequest) => {
    const secret = cookieValue(request.headers.cookie, SESSION_COOKIE);
    return secret === undefined ? undefined : sessions.find(secret);
  };

  /** How the OpenAPI description names the console's cookie (http/openapi.ts). */
  const SESSION = [{ consoleSession: [] }];
  app.post(
    '/v1/session',
    // Signing in is how a credential is got: it needs none.
    { schema: { body: SessionCreateRequest, response: { 201: SessionView }, security: [] } },
    async (request, reply) => {
      if (!sameOrigin(request, deps.hosts))
        throw new ForbiddenError('sign in from the console itself', 'csrf');
      const body = request.body as SessionCreateRequest;
      const byToken =
        body.token !== undefined && body.code === undefined
          ? await deps.principals.byBearer(body.token)
          : undefined;
      const linkUser = !byToken && body.code !== undefined ? await sessions.redeemCode(body.code) : undefined;
      const byLink =
        linkUser === undefined ? undefined : await deps.principals.bySession(linkUser, `link:${linkUser}`);
      const principal = byToken ?? byLink;
      if (!principal) {
        // A known token or link of a user counts against that user too, whatever the source.
        const user = linkUser ?? (await refusedOwner(body, deps.principals, sessions));
        const refusal = new RefusedCredentialError(
          'that admin token or sign-in link is not valid (links work once, for 15 minutes)',
          'bad_credential',
          user,
        );
        throw (await deps.refusals?.refuse(request.ip, refusal, user)) ?? refusal;
      }
      const session = await sessions.create(principal.user, principal.credential);
      request.log.info(
        { session: session.idHash.slice(0, 12), user: principal.user, via: byToken ? 'token' : 'link' },
        'console sign-in',
      );
      return reply
        .code(201)
        .header('set-cookie', cookie(session.secret, Math.floor(SESSION_LIFETIME_MS / 1000)))
        .send(view(session));
    },
  );
  app.get(
    '/v1/session',
    { schema: { response: { 200: SessionView }, security: SESSION } },
    async (request) => {
      const session = await current(request);
      if (!session) throw new UnauthorizedError('not signed in to the console', 'session_ended');
      return view(session);
    },
  );
  // Sign-out checks the session and its CSRF token like any state-changing call, then ends it in
  // the store, so the cookie is worthless on every replica even if a copy of it survives.
  const guard = sessionCredential(sessions, deps.hosts, deps.principals);
  app.delete('/v1/session', { schema: { body: NoBody, security: SESSION } }, async (request, reply) => {
    reply.header('set-cookie', cookie('', 0));
    if (!(await guard(request))) throw new UnauthorizedError('not signed in to the console', 'session_ended');
    await sessions.end(request.consoleSession!.idHash);
    request.log.info({ session: request.consoleSession!.idHash.slice(0, 12) }, 'console sign-out');
    return reply.code(204).send();
  });
}

/** `GET /v1/fleet`: the fleet bar's figures, behind the admin guard, counted within the asker's scope. */
export function fleetRoutes(
  app: FastifyInstance,
  summary: (principal: Principal | null) => Promise<FleetSummary>,
): void {
  app.get(
    '/v1/fleet',
    {
      config: { access: { verb: 'read', resource: 'nodes', scoped: true } },
      schema: { response: { 200: FleetSummary } },
    },
    async (request) => summary(request.principal),
  );
}

/**
 * `POST /v1/console/links`, behind the admin guard: a fresh one-time sign-in link, so that the
 * server need not print one where logs keep it, for the user whose API token asks. A console
 * session may not: it must not mint sessions that outlive its own 12 hours.
 */
export function signInLinkRoutes(app: FastifyInstance, sessions: Pick<SessionService, 'issueCode'>): void {
  app.post(
    '/v1/console/links',
    {
      // A link signs in the user who asks for it, so any user may make one for themselves.
      config: { access: { verb: 'create', resource: 'users', own: true } },
      schema: { body: SignInLinkRequest, response: { 201: SignInLinkCreated } },
    },
    async (request, reply) => {
      if (request.consoleSession !== null || !request.principal) {
        throw new ForbiddenError(
          'sign-in links are made with an API token (such as admin.token), not from the console',
          'admin_only',
        );
      }
      const { code, expiresAt } = await sessions.issueCode(request.principal.user);
      request.log.info('console sign-in link issued'); // never the code itself
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({ code, path: `/#code=${code}`, expiresAt: new Date(expiresAt).toISOString() });
    },
  );
}
