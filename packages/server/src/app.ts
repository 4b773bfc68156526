import type { Server as HttpsServer } from 'node:https';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Clock, IdSource } from './clock.js';
import { closeAll, mount, timedWrite } from './compose.js';
import type { ServerConfig } from './config.js';
import type { DecisionRecorder } from './decisions/recorder.js';
import type { CredentialService } from './features/access/credentials.js';
import { withCredential } from './features/access/guard.js';
import { ScopeFilter } from './features/access/scope.js';
import { setupAccess } from './features/access/setup.js';
import type { CaRotationService } from './features/ca/rotation.js';
import { setupCa } from './features/ca/setup.js';
import type { ChannelHub } from './features/channel/hub.js';
import { setupChannel } from './features/channel/setup.js';
import { setupCommands } from './features/commands/setup.js';
import type { SessionService } from './features/console/sessions.js';
import { setupConsole } from './features/console/setup.js';
import { setupEnrollment } from './features/enrollment/setup.js';
import { withEvents } from './features/events/recorder.js';
import type { EventService } from './features/events/service.js';
import { setupEvents } from './features/events/setup.js';
import type { EventStreams } from './features/events/streams.js';
import type { Core, Feature } from './features/feature.js';
import { setupHeartbeats, setupPacing } from './features/heartbeats/setup.js';
import { setupInstall } from './features/install/setup.js';
import { setupJobs } from './features/jobs/setup.js';
import type { LedgerService } from './features/ledger/service.js';
import { setupLedger } from './features/ledger/setup.js';
import { Metrics } from './features/metrics/metrics.js';
import { setupMetrics } from './features/metrics/setup.js';
import type { NodeService } from './features/nodes/service.js';
import { setupNodes } from './features/nodes/setup.js';
import type { StatusWatcher } from './features/nodes/status-watch.js';
import { setupRenewal } from './features/renewal/setup.js';
import { setupRequests } from './features/requests/setup.js';
import { type ProxiedPlane, signedPlane } from './features/signed/index.js';
import { setupTelemetry } from './features/telemetry/setup.js';
import { setupTokens } from './features/tokens/setup.js';
import type { LiveConnections } from './http/connections.js';
import { createPlanes } from './http/planes.js';
import { limitsFor } from './http/shared-rate-limit.js';
import type { ServerIdentity } from './pki/datadir.js';
import { fleetRoots } from './pki/fleet.js';
import type { Store } from './store/db.js';

export interface AppDeps {
  config: ServerConfig;
  store: Store;
  identity: ServerIdentity;
  clock: Clock;
  ids: IdSource;
  logger: Logger;
  decisions?: DecisionRecorder;
  /** Re-issues the server's TLS certificate when the fleet CA it must come from changed. */
  renewServerIdentity?: () => Promise<unknown>;
}

/** The control plane, built but not listening. */
export interface MusterApp {
  /** TLS, client certificates requested: enrollment, heartbeats. */
  readonly agent: FastifyInstance;
  /** Bearer token: tokens, nodes, health. */
  readonly admin: FastifyInstance;
  readonly nodes: NodeService;
  readonly ledger: LedgerService;
  /** Announces status changes as events; sweeps on its own, tests call `sweep()`. */
  readonly statusWatcher: StatusWatcher;
  readonly events: EventService;
  /** The live event streams (SSE) this process serves. */
  readonly streams: EventStreams;
  readonly channels: ChannelHub;
  readonly metrics: Metrics;
  readonly connections: LiveConnections;
  /** Rotation of the fleet CA; `sync()` takes up what another replica did (a timer also does). */
  readonly caRotation: CaRotationService;
  /** Puts the server identity and the trusted roots in front of new connections on both planes. */
  applyServerIdentity(): void;
  /** True when the admin plane serves HTTPS. */
  readonly adminTls: boolean;
  /** Console sessions; `issueCode()` makes the one-time code of a sign-in link. */
  readonly sessions: SessionService;
  /** API tokens and the users behind every admin credential. */
  readonly credentials: CredentialService;
  /** The agent-plane URL join lines carry. */
  joinUrl(): string;
  /** The `--proxied-listen` plane (signed requests), built but not listening; unset without it. */
  readonly proxied?: ProxiedPlane;
  close(): Promise<void>;
}

/**
 * The composition root: the features in dependency order, each given what it needs as arguments
 * (see features/feature.ts and ARCHITECTURE.md), then their routes mounted and their loops started.
 */
export async function buildApp(deps: AppDeps): Promise<MusterApp> {
  const { config, store, identity, clock, ids, logger } = deps;
  const background = new AbortController();
  const signal = background.signal;
  const roots = fleetRoots(identity);
  const metrics = new Metrics();
  const planes = createPlanes({
    config,
    identity,
    roots,
    logger,
    store,
    onRefused: (plane, reason) => metrics.connectionsRefused.inc({ plane, reason }),
  });
  // Every rate limit holds for the fleet (in PostgreSQL when replicas share it).
  const rateLimits = limitsFor(store, clock, (err) =>
    logger.warn({ err }, 'could not sweep rate-limit buckets'),
  );
  const base = { config, store, clock, ids, logger, identity, roots, rateLimits, joinUrl: planes.joinUrl };
  const scope = new ScopeFilter(store.db);

  const ledger = setupLedger(base);
  const events = await setupEvents({
    ...base,
    retentionMs: config.eventRetentionMs,
    signal,
    scope,
    facetsOf: (ids) => scope.facets(ids),
  });
  const write = timedWrite(events.writeWithEvents, metrics);
  // Every decision is a ledger entry and an event, in the transaction that makes the change.
  const decisions = withCredential(withEvents(deps.decisions ?? ledger.ledger.recorder(), events.events));
  const core: Core = { ...base, write, decisions };

  const pacing = setupPacing(core);
  const { pacer } = pacing;
  const nodes = setupNodes({ ...core, pacer, events: events.events });
  // Agents behind a TLS-terminating proxy, identified by signed requests (CONTRACT section 12).
  const proxied = signedPlane({
    config,
    db: store.db,
    clock,
    logger,
    agent: planes.agent,
    identity: nodes.socketIdentity,
  });
  const telemetry = setupTelemetry({ ...core, nodes: nodes.nodes });
  const tokens = setupTokens(core);
  const enrollment = setupEnrollment({
    ...core,
    ledger: ledger.ledger,
    connections: nodes.connections,
    pacer,
    metrics,
  });
  const renewal = setupRenewal(core);
  const commands = setupCommands({ ...core, events: events.events, signal, scope });
  const ca = setupCa({
    ...core,
    renewServerIdentity: deps.renewServerIdentity,
    applyServerIdentity: planes.applyServerIdentity,
  });
  const requests = setupRequests({ ...core, events: events.events, ledger: ledger.ledger, pacer });
  const install = setupInstall(core);
  const heartbeats = setupHeartbeats({
    ...core,
    pacer,
    statusWatcher: nodes.statusWatcher,
    ledger: ledger.ledger,
    metrics,
    httpAnswer: (node, ack) => commands.httpAnswer(node, ack),
  });
  const channel = setupChannel({
    ...core,
    server: planes.agent.server as unknown as HttpsServer,
    socketIdentity: nodes.socketIdentity,
    proxied,
    pacer,
    heartbeat: heartbeats.take,
    handlers: commands.channelHooks,
    senders: [commands],
  });
  const { channels } = channel;
  const observed = setupMetrics({
    ...core,
    metrics,
    agent: planes.agent,
    sources: {
      nodesByStatus: () => nodes.statusWatcher.counts(),
      channelsHeld: () => channels.size,
      eventStreams: () => ({ open: events.streams.size, evicted: events.streams.evicted }),
      connectionsOpen: planes.connectionsOpen,
    },
  });
  const access = await setupAccess({ ...core, events: events.events, adminTls: planes.adminTls });
  const consoleUi = setupConsole({
    ...core,
    ...access,
    adminTls: planes.adminTls,
    adminHosts: planes.adminHosts,
    adminAddress: () => planes.admin.server.address(),
    events: events.events,
    ledger: ledger.ledger,
    channels,
    metrics,
    scope,
  });
  const jobs = setupJobs({ ...core, nodes: nodes.nodes, policy: commands.policy });

  const features: Feature[] = [
    ledger,
    events,
    pacing,
    nodes,
    telemetry,
    tokens,
    enrollment,
    renewal,
    commands,
    ca,
    requests,
    install,
    heartbeats,
    channel,
    observed,
    access,
    consoleUi,
    jobs,
    ...(proxied ? [proxiedFeature(proxied)] : []),
  ];
  await mount(
    planes,
    features,
    (scope) => access.gate(scope, consoleUi.signedIn),
    nodes.socketIdentity,
    proxied,
  );
  for (const feature of features) feature.start?.(signal);
  await Promise.all([planes.agent.ready(), planes.admin.ready()]);
  return {
    agent: planes.agent,
    admin: planes.admin,
    nodes: nodes.nodes,
    statusWatcher: nodes.statusWatcher,
    ledger: ledger.ledger,
    events: events.events,
    streams: events.streams,
    connections: nodes.connections,
    adminTls: planes.adminTls,
    caRotation: ca.caRotation,
    applyServerIdentity: planes.applyServerIdentity,
    sessions: consoleUi.sessions,
    credentials: access.credentials,
    joinUrl: planes.joinUrl,
    channels,
    ...(proxied ? { proxied } : {}),
    metrics,
    close: () => closeAll(background, planes, features),
  };
}

/** The proxied listener closes with the planes: it is not one of Fastify's. */
function proxiedFeature(proxied: ProxiedPlane): Feature {
  return {
    async stop() {
      if (proxied.server.listening) proxied.server.close();
      proxied.server.closeAllConnections();
    },
  };
}
