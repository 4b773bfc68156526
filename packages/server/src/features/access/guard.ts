import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type AccessRequest,
  type NodeFacets,
  RESOURCES,
  type Resource,
  type RoleSpec,
  roleAllows,
  roleAllowsSome,
  VERBS,
  type Verb,
} from '@muster/proto';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { AppError } from '../../errors.js';
import type { Principal } from '../../identity.js';

/**
 * What a route does, in authorization's words: every route of the admin guard declares it in
 * its options (`config: { access: … }`), and one without fails at startup.
 */
export interface RouteAccess {
  verb: Verb;
  resource: Resource;
  /** The path parameter naming the node the request is about: a narrowed rule must select it. */
  nodeParam?: string;
  /** A listing: allowed when the role allows some items; the route filters them by `mayAccess`. */
  scoped?: boolean;
  /** The principal's own credentials: the route decides, since any user may manage their own. */
  own?: boolean;
  /** Any principal with a valid credential, whatever its role (CONTRACT section 8: `/metrics`). */
  anyPrincipal?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** The user acting on the admin plane, once a credential proved who they are. */
    principal: Principal | null;
    /**
     * Refuses the request as the guard does (a 403 with the `access.denied` event), for what only
     * the handler can see: a command whose targets reach outside a narrowed role's scope.
     */
    denyAccess: ((detail: string) => Promise<never>) | null;
  }
}

/** A 403 that names what was refused and the `access.denied` event recorded for it. */
export class AccessDeniedError extends AppError {
  constructor(
    message: string,
    readonly eventId: number,
  ) {
    super(403, 'forbidden', message);
  }
  override problemFields(): Record<string, unknown> {
    return { eventId: this.eventId };
  }
}

/** Whether every role of the principal allows the request: the one decision, applied to a user. */
export function mayAccess(principal: Principal, request: AccessRequest): boolean {
  return principal.roles.every((role) => roleAllows(role, request));
}

/** The credential behind the admin request being handled, so decisions can name it in their data. */
export const requestCredential = new AsyncLocalStorage<{ credential: string }>();

export interface GuardDeps {
  /** The node a request is about, as rules narrow by it; undefined when there is none. */
  nodeFacets(id: string): Promise<NodeFacets | undefined>;
  /** Records the `access.denied` event and returns its id. */
  recordDenial(principal: Principal, access: RouteAccess, detail: string, path: string): Promise<number>;
}

function assertAccess(route: RouteOptions): void {
  const access = route.config?.access;
  const where = `${String(route.method)} ${route.url}`;
  if (!access) throw new Error(`admin route ${where} declares no access ({verb, resource}) in its config`);
  if (
    !(VERBS as readonly string[]).includes(access.verb) ||
    !(RESOURCES as readonly string[]).includes(access.resource)
  )
    throw new Error(`admin route ${where} declares an unknown verb or resource`);
}

/**
 * Installs authorization on the admin guard's scope: the route table is checked as routes are
 * added, and each request is decided before its body is validated or its handler runs.
 */
export function installAccessGuard(scope: FastifyInstance, deps: GuardDeps): void {
  scope.addHook('onRoute', assertAccess);
  // Run the rest of the request inside the credential's context (a callback hook, so the
  // handler and everything it awaits inherit it).
  scope.addHook('onRequest', (request, _reply, done) => {
    if (!request.principal) return done();
    requestCredential.run({ credential: request.principal.credential }, done);
  });
  // Before validation: a role that may not make a request learns nothing of what its body lacks.
  scope.addHook('preValidation', async (request) => {
    const principal = request.principal;
    const access = request.routeOptions.config.access;
    if (!principal || !access) return;
    const path = request.routeOptions.url ?? request.url;
    request.denyAccess = async (detail) => {
      throw new AccessDeniedError(detail, await deps.recordDenial(principal, access, detail, path));
    };
    if (access.own || access.anyPrincipal) return;
    const refusal = await refused(request, principal, access, deps);
    if (refusal === undefined) return;
    await request.denyAccess(refusal);
  });
}

async function refused(
  request: FastifyRequest,
  principal: Principal,
  access: RouteAccess,
  deps: GuardDeps,
): Promise<string | undefined> {
  const { verb, resource } = access;
  let denying: RoleSpec | undefined;
  if (access.scoped) {
    denying = principal.roles.find((role) => !roleAllowsSome(role, verb, resource));
  } else {
    const id = access.nodeParam ? (request.params as Record<string, string>)[access.nodeParam] : undefined;
    const node = id === undefined || id.length > 128 ? undefined : await deps.nodeFacets(id);
    denying = principal.roles.find(
      (role) => !roleAllows(role, { verb, resource, ...(node ? { node } : {}) }),
    );
    // A role that reaches some nodes but not this one says so: the node is outside its scope.
    if (denying && node && roleAllowsSome(denying, verb, resource))
      return `role ${denying.name} may not ${verb} ${resource} outside its scope (node ${id})`;
  }
  return denying ? `role ${denying.name} may not ${verb} ${resource}` : undefined;
}

/**
 * Names the credential in the data of every decision an admin request makes, beside the
 * `user:<name>` actor, so the ledger shows which of a user's tokens or sessions acted.
 */
export function withCredential(inner: DecisionRecorder): DecisionRecorder {
  return {
    async record(trx, decision) {
      const context = requestCredential.getStore();
      if (!context || !decision.actor.startsWith('user:') || 'credential' in decision.data)
        return inner.record(trx, decision);
      return inner.record(trx, { ...decision, data: { ...decision.data, credential: context.credential } });
    },
  };
}
