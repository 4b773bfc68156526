import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type AlternativeCredential, adminTokenCheck } from '../../http/auth.js';
import { FailedCredentials } from '../../http/rate-limit.js';
import type { Principal } from '../../identity.js';
import type { EventSink } from '../events/service.js';
import type { AdminAuth, Core, Feature } from '../feature.js';
import { CredentialService } from './credentials.js';
import { installAccessGuard } from './guard.js';
import { LoginService } from './login.js';
import { loginCodeRoutes, loginRoutes } from './login-routes.js';
import { PeopleService } from './people.js';
import { namingRefusedTokens } from './refused-tokens.js';
import { certificateRevocationRoutes } from './revocation.js';
import { accessRoutes } from './routes.js';
import { UserCertificates } from './user-certificates.js';

export interface AccessDeps
  extends Pick<
    Core,
    | 'config'
    | 'store'
    | 'write'
    | 'clock'
    | 'ids'
    | 'decisions'
    | 'identity'
    | 'roots'
    | 'logger'
    | 'rateLimits'
  > {
  events: Pick<EventSink, 'append'>;
  /** Whether personal certificates can be presented: the admin plane serves HTTPS. */
  adminTls: boolean;
}

/** The labels and profile of a node, by id or by the name node routes take (its active node). */
async function nodeFacets(db: Core['store']['db'], id: string) {
  const row = await db
    .selectFrom('nodes')
    .select(['labels', 'profile'])
    .where((eb) =>
      eb.or([eb('id', '=', id), eb.and([eb('name', '=', id), eb('decommissioned_at', 'is', null)])]),
    )
    .executeTakeFirst();
  return row ? { labels: JSON.parse(row.labels) as Record<string, string>, profile: row.profile } : undefined;
}

/**
 * People, roles and credentials: users, API tokens, `muster login` certificates, the limit on
 * refused credentials, and `gate`, which authenticates the admin plane's scope and checks each
 * route's `config.access` against the principal's roles.
 */
export async function setupAccess(deps: AccessDeps) {
  const { config, store, write, clock, decisions, roots, logger } = deps;
  const people = new PeopleService({ db: store.db, write, clock, decisions });
  const credentials = new CredentialService({
    db: store.db,
    write,
    clock,
    decisions,
    people,
    traits: store.traits,
    logger,
  });
  await credentials.ensureBootstrap(deps.identity.adminToken);
  const refusals = new FailedCredentials({
    clock,
    perMinute: config.authFailureRate,
    limits: deps.rateLimits,
    onLimited: (key, refused, kind) =>
      logger.warn(
        { [kind]: key, refusedInLastMinute: refused },
        kind === 'user'
          ? 'security: too many refused credentials of one user; answering 429 until it slows down'
          : 'security: too many refused admin credentials from one address; answering 429 until it slows down',
      ),
  });
  const logins = new LoginService({
    db: store.db,
    write,
    clock,
    ids: deps.ids,
    decisions,
    roots,
    certLifetimeMs: config.userCertLifetimeMs,
  });
  const certificates = new UserCertificates({
    db: store.db,
    write,
    clock,
    trustDomain: config.trustDomain,
    roots,
  });
  const byCertificate = deps.adminTls
    ? (request: FastifyRequest) => certificates.principal(request)
    : undefined;

  const gate = (scope: FastifyInstance, signedIn: AlternativeCredential): AdminAuth =>
    guardScope(scope, { ...deps, credentials, refusals, byCertificate }, signedIn);
  return {
    people,
    credentials,
    refusals,
    logins,
    gate,
    adminPublicRoutes: (scope) => loginRoutes(scope, { logins, certificates, refusals }),
    adminRoutes: (scope) => {
      accessRoutes(scope, { people, credentials, logins });
      loginCodeRoutes(scope, logins);
      certificateRevocationRoutes(scope, { db: store.db, write, clock, decisions });
    },
    idle: () => credentials.idle(),
  } satisfies Feature & Record<string, unknown>;
}

/** Authenticates every request of `scope` (bearer, `signedIn`, certificate) and guards its routes. */
function guardScope(
  scope: FastifyInstance,
  deps: Pick<AccessDeps, 'store' | 'write' | 'events'> & {
    credentials: Pick<CredentialService, 'byBearer'>;
    refusals: FailedCredentials;
    byCertificate: ((request: FastifyRequest) => Promise<Principal | undefined>) | undefined;
  },
  signedIn: AlternativeCredential,
): AdminAuth {
  const { store, write, credentials, refusals, byCertificate } = deps;
  scope.addHook(
    'onRequest',
    adminTokenCheck(
      namingRefusedTokens(store.db, (secret) => credentials.byBearer(secret)),
      signedIn,
      refusals,
      byCertificate,
    ),
  );
  installAccessGuard(scope, {
    nodeFacets: (id) => nodeFacets(store.db, id),
    recordDenial: (principal, access, detail, route) =>
      write((trx) =>
        deps.events.append(trx, {
          kind: 'access.denied',
          actor: `user:${principal.user}`,
          severity: 'warning',
          data: {
            verb: access.verb,
            resource: access.resource,
            route,
            detail,
            credential: principal.credential,
          },
        }),
      ),
  });
  // Asking again does not count against the address: the request was signed in once.
  const again = adminTokenCheck((secret) => credentials.byBearer(secret), signedIn, undefined, byCertificate);
  return { stillSignedIn: (request) => again(request).then(() => true) };
}
