import type { EventSink } from '../events/service.js';
import type { Core, Feature } from '../feature.js';
import type { HeartbeatPacer } from '../heartbeats/pacer.js';
import type { LedgerService } from '../ledger/service.js';
import { requestAdminRoutes, requestAgentRoutes } from './routes.js';
import { RequestService } from './service.js';

export interface RequestsDeps
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
    | 'joinUrl'
    | 'rateLimits'
  > {
  events: Pick<EventSink, 'append'>;
  ledger: Pick<LedgerService, 'vkey'>;
  pacer: Pick<HeartbeatPacer, 'intervalMs'>;
}

/** Enrollment without a token: a queue an operator approves, and request files signed by hand. */
export function setupRequests(deps: RequestsDeps) {
  const { config, store, clock } = deps;
  const requests = new RequestService({
    db: store.db,
    write: deps.write,
    events: deps.events,
    traits: store.traits,
    settings: config.requests,
    publicUrl: () => deps.joinUrl(),
    clock,
    ids: deps.ids,
    decisions: deps.decisions,
    roots: deps.roots,
    certLifetimeMs: config.certLifetimeMs,
    heartbeatIntervalMs: () => deps.pacer.intervalMs(),
    ledgerKey: deps.ledger.vkey,
    fleetRoot: deps.identity.fleetRoot.publicKey,
  });
  const perMinute = config.requests.perMinute;
  const limiter = deps.rateLimits('request', perMinute / 60, perMinute);
  return {
    agentPublicRoutes: (scope) => requestAgentRoutes(scope, requests, limiter),
    adminRoutes: (scope) => requestAdminRoutes(scope, requests),
  } satisfies Feature;
}
