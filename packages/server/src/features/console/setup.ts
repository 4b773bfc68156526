import type { AddressInfo } from 'node:net';
import type { CredentialRefusals } from '../../http/auth.js';
import type { AdminHosts } from '../../http/host-check.js';
import type { CredentialService } from '../access/credentials.js';
import type { PeopleService } from '../access/people.js';
import type { ScopeFilter } from '../access/scope.js';
import type { ChannelHub } from '../channel/hub.js';
import type { EventSink } from '../events/service.js';
import type { Core, Feature } from '../feature.js';
import type { LedgerService } from '../ledger/service.js';
import type { Metrics } from '../metrics/metrics.js';
import { consoleDistDir, loadAssets } from './assets.js';
import { sessionCredential } from './guard.js';
import { consoleRoutes, fleetRoutes, signInLinkRoutes } from './routes.js';
import { SessionService } from './sessions.js';
import { SsoService } from './sso.js';
import { ssoRedirectUrl } from './sso-config.js';
import { ssoRoutes } from './sso-routes.js';
import { fleetSummary, RateMeter } from './summary.js';
import { userLinkRoutes } from './user-links.js';

/** How often the heartbeat total is sampled for the fleet bar's rate. */
const RATE_SAMPLE_MS = 1_000;
/** Single sign-ons one source may start: about one a second, in bursts of twenty. */
const SSO_STARTS_PER_SEC = 1;
const SSO_STARTS_BURST = 20;

export interface ConsoleDeps
  extends Pick<Core, 'config' | 'store' | 'write' | 'clock' | 'decisions' | 'logger' | 'rateLimits'> {
  adminTls: boolean;
  adminHosts: AdminHosts;
  /** Where the admin plane listens, for the SSO redirect URL when none is configured. */
  adminAddress(): AddressInfo | string | null;
  people: PeopleService;
  credentials: Pick<CredentialService, 'byBearer' | 'bySession' | 'ownerOf'>;
  refusals: CredentialRefusals;
  events: Pick<EventSink, 'append'>;
  ledger: Pick<LedgerService, 'size'>;
  channels: Pick<ChannelHub, 'size' | 'heldNodeIds'>;
  metrics: Pick<Metrics, 'heartbeats'>;
  scope: Pick<ScopeFilter, 'facets'>;
}

/** The web console: its pages, sign-in (links, API tokens, SSO), sessions and the fleet bar. */
export function setupConsole(deps: ConsoleDeps) {
  const { config, store, write, clock, people, credentials, refusals, adminHosts: hosts } = deps;
  const sessions = new SessionService({ db: store.db, write, clock });
  const secureCookie = deps.adminTls || config.adminBehindProxy;
  const settings = config.sso;
  const sso =
    settings &&
    new SsoService({
      settings,
      db: store.db,
      write,
      clock,
      redirectUrl: () =>
        ssoRedirectUrl(settings, deps.adminTls, config.adminListen.host, deps.adminAddress()),
    });
  const heartbeats = new RateMeter(
    async () => (await deps.metrics.heartbeats.get()).values.reduce((sum, v) => sum + v.value, 0),
    clock,
  );
  const summary = (principal: Parameters<typeof fleetSummary>[0]['principal']) =>
    fleetSummary({
      db: store.db,
      ledgerSize: () => deps.ledger.size(),
      channelsHeld: () => deps.channels.size,
      heartbeats,
      heldNodeIds: () => deps.channels.heldNodeIds(),
      facets: (ids) => deps.scope.facets(ids),
      principal,
    });
  return {
    sessions,
    /** The session cookie as an admin credential, for the access gate. */
    signedIn: sessionCredential(sessions, hosts, credentials),
    adminPublicRoutes: (scope) => {
      consoleRoutes(scope, {
        assets: loadAssets(consoleDistDir()),
        sessions,
        principals: credentials,
        secureCookie,
        hosts,
        refusals,
      });
      ssoRoutes(scope, {
        sso,
        issuer: settings?.issuer,
        sessions,
        principals: credentials,
        people,
        hosts,
        secureCookie,
        refusals,
        starts: deps.rateLimits('sso-start', SSO_STARTS_PER_SEC, SSO_STARTS_BURST),
        recordRefusal: (refusal, source) =>
          write((trx) =>
            deps.events.append(trx, {
              kind: 'access.denied',
              actor: refusal.facts.user ? `user:${refusal.facts.user}` : 'system',
              severity: 'warning',
              data: { via: 'sso', reason: refusal.reason, detail: refusal.message, source, ...refusal.facts },
            }),
          ),
      });
    },
    adminRoutes: (scope) => {
      fleetRoutes(scope, summary);
      signInLinkRoutes(scope, sessions);
      userLinkRoutes(scope, { sessions, people, db: store.db, decisions: deps.decisions });
    },
    start(signal) {
      heartbeats.start(RATE_SAMPLE_MS, signal, (err) =>
        deps.logger.warn({ err }, 'could not read heartbeats'),
      );
    },
  } satisfies Feature & Record<string, unknown>;
}
