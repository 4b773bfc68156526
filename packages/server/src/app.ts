import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { keyFingerprint } from '@muster/proto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Clock, IdSource } from './clock.js';
import { isLoopback, joinUrl, type ServerConfig } from './config.js';
import type { DecisionRecorder } from './decisions/recorder.js';
import { CredentialService } from './features/access/credentials.js';
import { installAccessGuard, withCredential } from './features/access/guard.js';
import { LoginService } from './features/access/login.js';
import { loginCodeRoutes, loginRoutes } from './features/access/login-routes.js';
import { PeopleService } from './features/access/people.js';
import { namingRefusedTokens } from './features/access/refused-tokens.js';
import { accessRoutes } from './features/access/routes.js';
import { ScopeFilter } from './features/access/scope.js';
import { UserCertificates } from './features/access/user-certificates.js';
import { CaRotationService, startCaSync } from './features/ca/rotation.js';
import { caRoutes } from './features/ca/routes.js';
import { CaService } from './features/ca/service.js';
import { ChannelHub } from './features/channel/hub.js';
import { commandAgentRoutes, commandRoutes } from './features/commands/routes.js';
import { startCommands } from './features/commands/setup.js';
import { consoleDistDir, loadAssets } from './features/console/assets.js';
import { sessionCredential } from './features/console/guard.js';
import { consoleRoutes, fleetRoutes, signInLinkRoutes } from './features/console/routes.js';
import { SessionService } from './features/console/sessions.js';
import { SsoService } from './features/console/sso.js';
import { ssoRedirectUrl } from './features/console/sso-config.js';
import { ssoRoutes } from './features/console/sso-routes.js';
import { fleetSummary, RateMeter } from './features/console/summary.js';
import { userLinkRoutes } from './features/console/user-links.js';
import { enrollmentRoutes } from './features/enrollment/routes.js';
import { EnrollmentService } from './features/enrollment/service.js';
import { withEvents } from './features/events/recorder.js';
import { eventRoutes } from './features/events/routes.js';
import type { EventService } from './features/events/service.js';
import { startEvents } from './features/events/setup.js';
import type { EventStreams } from './features/events/streams.js';
import { HeartbeatPacer } from './features/heartbeats/pacer.js';
import { heartbeatAcker, heartbeatRoutes } from './features/heartbeats/routes.js';
import { HeartbeatThrottle, throttleReport } from './features/heartbeats/throttle.js';
import { HeartbeatWriter } from './features/heartbeats/writer.js';
import { AgentPackage, defaultPackageDir } from './features/install/package.js';
import { installAdminRoutes, installAgentRoutes } from './features/install/routes.js';
import { InstallService } from './features/install/service.js';
import { jobRoutes } from './features/jobs/routes.js';
import { JobService } from './features/jobs/service.js';
import { ledgerAgentRoutes, ledgerRoutes } from './features/ledger/routes.js';
import { LedgerService } from './features/ledger/service.js';
import { Metrics } from './features/metrics/metrics.js';
import { metricsRoute, observabilityRoutes } from './features/metrics/routes.js';
import { nodeRoutes } from './features/nodes/routes.js';
import { NodeService } from './features/nodes/service.js';
import { StatusWatcher } from './features/nodes/status-watch.js';
import { renewalRoutes } from './features/renewal/routes.js';
import { RenewalService } from './features/renewal/service.js';
import { requestAdminRoutes, requestAgentRoutes } from './features/requests/routes.js';
import { RequestService } from './features/requests/service.js';
import { type ProxiedPlane, signedPlane } from './features/signed/index.js'; // signed-requests
import { telemetryRoutes } from './features/telemetry/routes.js';
import { sweep as sweepTelemetry } from './features/telemetry/store.js';
import { tokenRoutes } from './features/tokens/routes.js';
import { TokenService } from './features/tokens/service.js';
import { adminTokenCheck, identifySocket, nodeIdentityCheck, type SocketIdentityDeps } from './http/auth.js';
import {
  type ConnectionBudget,
  ConnectionGuard,
  defaultAgentConnections,
  LiveConnections,
} from './http/connections.js';
import { createPlane } from './http/fastify.js';
import { AdminHosts } from './http/host-check.js';
import { OpenApiRecorder } from './http/openapi.js';
import { FailedCredentials, RateLimiter } from './http/rate-limit.js';
import type { ServerIdentity } from './pki/datadir.js';
import { fleetRoots } from './pki/fleet.js';
import { serverChain } from './pki/server-identity.js';
import { rateLimitedLog } from './rate-limited-log.js';
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
  /** signed-requests: the `--proxied-listen` plane, built but not listening; unset without it. */
  readonly proxied?: ProxiedPlane;
  close(): Promise<void>;
}

export async function buildApp(deps: AppDeps): Promise<MusterApp> {
  const { config, store, identity, clock, ids, logger } = deps;
  const ledgerKey = createPrivateKey(identity.ledgerKeyPem);
  const ledger = new LedgerService({
    db: store.db,
    clock,
    origin: `${config.trustDomain}/muster-ledger`,
    privateKey: ledgerKey,
    publicKey: createPublicKey(ledgerKey),
  });
  const background = new AbortController();
  ledger.startCheckpointer(config.checkpointIntervalMs, background.signal, (err) =>
    logger.warn({ err }, 'could not sign a ledger checkpoint'),
  );
  const nodeScope = new ScopeFilter(store.db);
  const { events, streams, writeWithEvents } = await startEvents({
    store,
    clock,
    retentionMs: config.eventRetentionMs,
    signal: background.signal,
    logger,
    facetsOf: (ids) => nodeScope.facets(ids),
  });
  // Every decision is a ledger entry, appended in the transaction that makes the change, and
  // an event in that same transaction.
  const decisions = withCredential(withEvents(deps.decisions ?? ledger.recorder(), events));
  const connections = new LiveConnections();
  const roots = fleetRoots(identity);
  let metrics: Metrics | undefined; // made below; writes before it exist are not timed
  const write: Store['write'] = (fn) => {
    const done = metrics?.storeWriteSeconds.startTimer();
    return writeWithEvents(fn).finally(() => done?.());
  };
  const sweeper = setInterval(() => {
    sweepTelemetry(store.db, clock.now(), config.telemetryRetentionMs).catch((err) =>
      logger.warn({ err }, 'could not remove old telemetry'),
    );
  }, 60_000);
  sweeper.unref();
  background.signal.addEventListener('abort', () => clearInterval(sweeper));
  const pacer = new HeartbeatPacer(config.heartbeatIntervalMs, config.maxHeartbeatRate, clock);
  pacer.start(
    async () =>
      Number(
        (
          await store.db
            .selectFrom('nodes')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('decommissioned_at', 'is', null)
            .executeTakeFirstOrThrow()
        ).n,
      ),
    10_000,
    background.signal,
    (err) => logger.warn({ err }, 'could not count the fleet to pace heartbeats'),
  );
  const nodes = new NodeService({
    db: store.db,
    write,
    clock,
    decisions,
    connections,
    heartbeatIntervalMs: () => pacer.stalenessIntervalMs(),
    thresholds: (profile) => config.thresholds[profile] ?? config.thresholds.default!,
    clockSkewAllowanceMs: config.clockSkewAllowanceMs,
    onDecommissioned: (id) => statusWatcher.nudge([id]),
  });
  const statusWatcher = new StatusWatcher({
    db: store.db,
    write,
    nudgeFailed: rateLimitedLog(
      logger,
      'status-nudge',
      'could not check the nodes a heartbeat nudged',
      clock,
    ),
    nodes,
    events,
    clock,
    debounceMs: config.statusDebounceMs,
    heartbeatIntervalMs: () => pacer.stalenessIntervalMs(),
  });
  statusWatcher.start(5_000, background.signal, (err) => {
    if (!background.signal.aborted) logger.warn({ err }, 'could not sweep node status');
  });
  const tokens = new TokenService({
    db: store.db,
    write,
    clock,
    ids,
    decisions,
    caPin: () => roots.presented().pin,
    rootPin: keyFingerprint(identity.fleetRoot.publicKey),
    publicUrl: () => joinUrl(config, boundPort()),
  });
  const enrollment = new EnrollmentService({
    db: store.db,
    write,
    ledgerKey: ledger.vkey,
    fleetRoot: identity.fleetRoot.publicKey,
    traits: store.traits,
    clock,
    ids,
    decisions,
    roots,
    connections,
    certLifetimeMs: config.certLifetimeMs,
    heartbeatIntervalMs: () => pacer.intervalMs(),
  });
  // A heartbeat that moves a node's health is checked at once, not at the next sweep.
  const writer = new HeartbeatWriter(store.db, {
    onChanged: (ids) => statusWatcher.nudge(ids),
    quietMs: () => 2.5 * pacer.stalenessIntervalMs(),
    onSeen: (seen) => statusWatcher.heard(seen),
    sampleGapMs: () => pacer.intervalMs() / 2,
  });
  const renewal = new RenewalService({
    write,
    clock,
    ids,
    decisions,
    roots,
    certLifetimeMs: config.certLifetimeMs,
  });
  const commanding = startCommands({
    store,
    write,
    clock,
    decisions,
    events,
    fleetRoot: identity.fleetRoot.publicKey,
    skewAllowanceMs: config.clockSkewAllowanceMs,
    logger,
    signal: background.signal,
  });
  // Listening on port 0 picks the port at bind time; join lines must carry the real one.
  const boundPort = () => (agent.server.address() as { port?: number } | null)?.port ?? config.listen.port;

  const agent = createPlane({
    logger,
    plane: 'agent',
    storeUnavailable: (err) => store.traits.isUnavailable(err),
    https: {
      key: identity.serverKeyPem,
      cert: serverChain(identity),
      ca: roots.trusted().map((ca) => ca.pem),
      requestCert: true,
      // Enrollment comes without a certificate; every other route checks socket.authorized itself.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      handshakeTimeout: config.connections.handshakeTimeoutMs,
    },
  });
  const guard = (plane: 'agent' | 'admin', app: FastifyInstance, budget: ConnectionBudget, plain: boolean) =>
    new ConnectionGuard({
      plane,
      budget,
      handshakeTimeoutMs: config.connections.handshakeTimeoutMs,
      plainHttp: plain,
      onRefused: (reason) => metrics?.connectionsRefused.inc({ plane, reason }),
      logger,
    }).attach(app.server);
  const { admin: adminBudget, agent: agentBudget } = config.connections;
  const agentTotal = agentBudget.total ?? defaultAgentConnections(adminBudget.total);
  const agentGuard = guard('agent', agent, { ...agentBudget, total: agentTotal }, false);
  const applyServerIdentity = () => {
    const plane = (app: FastifyInstance) => app.server as unknown as HttpsServer;
    const cert = serverChain(identity);
    const key = identity.serverKeyPem;
    const ca = roots.trusted().map((root) => root.pem);
    plane(agent).setSecureContext({ key, cert, ca, minVersion: 'TLSv1.2' });
    // The admin plane presents the server identity too, unless an operator gave it its own;
    // either way it asks for personal certificates from the roots trusted now.
    if (adminTls)
      plane(admin).setSecureContext({ ...(adminIdentity ?? { key, cert }), ca, minVersion: 'TLSv1.2' });
  };
  const caRotation = new CaRotationService({
    db: store.db,
    write,
    clock,
    ids,
    decisions,
    identity,
    refreshServerCertificate: async () => {
      await deps.renewServerIdentity?.();
    },
    applyTls: () => applyServerIdentity(),
  });
  startCaSync(caRotation, background.signal, logger);
  const openapi = new OpenApiRecorder();
  openapi.watch(agent, 'agent');
  agent.decorateRequest('node', null);
  agent.decorateRequest('actor', '');
  enrollmentRoutes(
    agent,
    {
      enroll: async (request) => {
        const enrolled = await enrollment.enroll(request);
        metrics?.enrollments.inc();
        return enrolled;
      },
    },
    new RateLimiter(clock, config.enrollRate, config.enrollRate * 5),
  );
  // Enrollment without a token: a queue an operator approves, and request files signed by hand.
  const requests = new RequestService({
    db: store.db,
    write,
    events,
    traits: store.traits,
    settings: config.requests,
    publicUrl: () => joinUrl(config, boundPort()),
    clock,
    ids,
    decisions,
    roots,
    certLifetimeMs: config.certLifetimeMs,
    heartbeatIntervalMs: () => pacer.intervalMs(),
    ledgerKey: ledger.vkey,
    fleetRoot: identity.fleetRoot.publicKey,
  });
  requestAgentRoutes(
    agent,
    requests,
    new RateLimiter(clock, config.requests.perMinute / 60, config.requests.perMinute),
  );
  // The packaged agent for the one-line installer: no client certificate, limited as enrollment is.
  const install = new InstallService({
    package: new AgentPackage(config.packageDir ?? defaultPackageDir()),
    roots,
    publicUrl: () => joinUrl(config, boundPort()),
    rootPin: keyFingerprint(identity.fleetRoot.publicKey),
  });
  installAgentRoutes(agent, install, new RateLimiter(clock, config.enrollRate, config.enrollRate * 5));
  const identityDeps: SocketIdentityDeps = {
    identityBySerial: (s) => nodes.identityBySerial(s),
    promote: (id, s) => nodes.promote(id, s),
    noteRefusedSerial: (s) => nodes.noteRefusedSerial(s),
    connections,
    clock,
    roots,
  };
  // signed-requests: agents behind a TLS-terminating proxy (features/signed, CONTRACT section 12).
  const proxied = signedPlane({ config, db: store.db, clock, logger, agent, identity: identityDeps });
  const acker = heartbeatAcker({
    writer,
    throttle: new HeartbeatThrottle(clock, () => pacer.intervalMs(), config.heartbeatBurst),
    onThrottled: throttleReport(logger, clock, (transport) =>
      metrics?.heartbeatsThrottled.inc({ transport }),
    ),
    clock,
    heartbeatIntervalMs: () => pacer.intervalMs(),
    latestCheckpoint: () => ledger.latestCheckpoint(),
    renewWindowSec: () => CaRotationService.renewWindowSec(pacer.intervalMs()),
  });
  const channels = new ChannelHub({
    identify: (socket) =>
      proxied?.holds(socket) ? proxied.identify(socket) : identifySocket(socket, identityDeps), // signed-requests
    heartbeat: async (node, heartbeat) => {
      const ack = await acker(node, heartbeat, 'channel');
      metrics?.heartbeats.inc({ transport: 'channel' });
      return ack;
    },
    heartbeatIntervalSec: () => Math.round(pacer.intervalMs() / 1000),
    // A node may open a channel about once a second, in bursts of five: a flapping agent
    // reconnecting every 100 ms is turned away instead of churning the server.
    limiter: new RateLimiter(clock, 1, 5),
    onDuplicate: (node) => {
      logger.warn(
        { node: node.id },
        'security: a second channel opened for one node identity; the older was closed',
      );
      void write((trx) =>
        decisions.record(trx, {
          kind: 'security.duplicate_channel',
          actor: `node:${node.id}`,
          subject: `node:${node.id}`,
          data: { serial: node.serial },
        }),
      ).catch((err) => logger.warn({ err }, 'could not record a duplicate channel'));
    },
    logger,
    ...commanding.channelHooks,
  });
  commanding.attach(channels);
  channels.attach(agent.server as unknown as HttpsServer);
  if (proxied) channels.attach(proxied.relay as unknown as HttpsServer); // signed-requests
  await agent.register(async (scope) => {
    // signed-requests: requests from --proxied-listen are identified by their signature instead.
    scope.addHook(
      'onRequest',
      proxied ? proxied.orCertificate(nodeIdentityCheck(identityDeps)) : nodeIdentityCheck(identityDeps),
    );
    if (proxied) scope.addHook('preParsing', proxied.preParsing);
    openapi.secured(scope, [{ nodeCertificate: [] }]);
    renewalRoutes(scope, renewal, new RateLimiter(clock, config.renewRate / 60, config.renewRate));
    heartbeatRoutes(scope, async (node, heartbeat) => {
      const ack = await acker(node, heartbeat, 'http');
      metrics?.heartbeats.inc({ transport: 'http' });
      return commanding.httpAnswer(node, ack);
    });
    commandAgentRoutes(scope, commanding);
    ledgerAgentRoutes(scope, ledger);
  });

  // Given its own certificate the admin plane serves HTTPS on loopback too (CONTRACT section 8).
  const adminTls =
    config.adminCert !== undefined || (!isLoopback(config.adminListen.host) && !config.adminBehindProxy);
  const adminIdentity = config.adminCert
    ? { cert: readFileSync(config.adminCert), key: readFileSync(config.adminKey!) }
    : undefined;
  const adminHosts = AdminHosts.from(config);
  const admin = createPlane({
    logger,
    plane: 'admin',
    hosts: adminHosts,
    storeUnavailable: (err) => store.traits.isUnavailable(err),
    ...(adminTls
      ? {
          https: {
            ...(adminIdentity ?? { cert: serverChain(identity), key: identity.serverKeyPem }),
            // Asked for, never required: a personal certificate from `muster login` is one
            // credential among others, checked on every request (user-certificates.ts).
            ca: roots.trusted().map((root) => root.pem),
            requestCert: true,
            rejectUnauthorized: false,
            minVersion: 'TLSv1.2',
            handshakeTimeout: config.connections.handshakeTimeoutMs,
          },
        }
      : {}),
  });
  // Behind a TLS proxy every connection comes from the proxy: one source, the whole budget.
  const adminShare = config.adminBehindProxy ? adminBudget.total : adminBudget.perSource;
  const adminGuard = guard('admin', admin, { ...adminBudget, perSource: adminShare }, !adminTls);
  openapi.watch(admin, 'admin');
  admin.decorateRequest('node', null);
  admin.decorateRequest('actor', '');
  admin.decorateRequest('consoleSession', null);
  admin.decorateRequest('principal', null);
  admin.decorateRequest('denyAccess', null);
  admin.get('/openapi.json', async () => openapi.document());
  metrics = new Metrics({
    nodesByStatus: () => statusWatcher.counts(),
    channelsHeld: () => channels.size,
    eventStreams: () => ({ open: streams.size, evicted: streams.evicted }),
    connectionsOpen: () => ({ agent: agentGuard.size, admin: adminGuard.size }),
  });
  const observed = metrics;
  observabilityRoutes({ agent, admin }, observed, () => store.ping());
  const sessions = new SessionService({ db: store.db, write, clock });
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
  await credentials.ensureBootstrap(identity.adminToken);
  const refusals = new FailedCredentials({
    clock,
    perMinute: config.authFailureRate,
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
    ids,
    decisions,
    roots,
    certLifetimeMs: config.userCertLifetimeMs,
  });
  const userCertificates = new UserCertificates({
    db: store.db,
    write,
    clock,
    trustDomain: config.trustDomain,
    roots,
  });
  loginRoutes(admin, { logins, certificates: userCertificates, refusals });
  consoleRoutes(admin, {
    assets: loadAssets(consoleDistDir()),
    sessions,
    principals: credentials,
    secureCookie: adminTls || config.adminBehindProxy,
    hosts: adminHosts,
    refusals,
  });
  const sso =
    config.sso &&
    new SsoService({
      settings: config.sso,
      db: store.db,
      write,
      clock,
      redirectUrl: () =>
        ssoRedirectUrl(config.sso!, adminTls, config.adminListen.host, admin.server.address()),
    });
  ssoRoutes(admin, {
    sso,
    issuer: config.sso?.issuer,
    sessions,
    principals: credentials,
    people,
    hosts: adminHosts,
    secureCookie: adminTls || config.adminBehindProxy,
    refusals,
    starts: new RateLimiter(clock, 1, 20),
    recordRefusal: (refusal, source) =>
      write((trx) =>
        events.append(trx, {
          kind: 'access.denied',
          actor: refusal.facts.user ? `user:${refusal.facts.user}` : 'system',
          severity: 'warning',
          data: { via: 'sso', reason: refusal.reason, detail: refusal.message, source, ...refusal.facts },
        }),
      ),
  });
  const heartbeatRate = new RateMeter(
    async () => (await observed.heartbeats.get()).values.reduce((sum, v) => sum + v.value, 0),
    clock,
  );
  heartbeatRate.start(1_000, background.signal, (err) => logger.warn({ err }, 'could not read heartbeats'));
  await admin.register(async (scope) => {
    const signedIn = sessionCredential(sessions, adminHosts, credentials);
    const byCertificate = adminTls
      ? (request: FastifyRequest) => userCertificates.principal(request)
      : undefined;
    scope.addHook(
      'onRequest',
      adminTokenCheck(
        namingRefusedTokens(store.db, (secret) => credentials.byBearer(secret)),
        signedIn,
        refusals,
        byCertificate,
      ),
    );
    openapi.secured(scope, [{ adminToken: [] }, { consoleSession: [] }, { userCertificate: [] }]);
    installAccessGuard(scope, {
      nodeFacets: async (id) => {
        const row = await store.db
          .selectFrom('nodes')
          .select(['labels', 'profile'])
          // By id, or by name as the node routes take it (the active node of that name).
          .where((eb) =>
            eb.or([eb('id', '=', id), eb.and([eb('name', '=', id), eb('decommissioned_at', 'is', null)])]),
          )
          .executeTakeFirst();
        return row
          ? { labels: JSON.parse(row.labels) as Record<string, string>, profile: row.profile }
          : undefined;
      },
      recordDenial: (principal, access, detail, route) =>
        write((trx) =>
          events.append(trx, {
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
    accessRoutes(scope, { people, credentials, logins });
    loginCodeRoutes(scope, logins);
    fleetRoutes(scope, (principal) =>
      fleetSummary({
        db: store.db,
        ledgerSize: () => ledger.size(),
        channelsHeld: () => channels.size,
        heartbeats: heartbeatRate,
        heldNodeIds: () => channels.heldNodeIds(),
        facets: (ids) => nodeScope.facets(ids),
        principal,
      }),
    );
    metricsRoute(scope, observed);
    signInLinkRoutes(scope, sessions);
    userLinkRoutes(scope, { sessions, people, db: store.db, decisions });
    tokenRoutes(scope, tokens);
    nodeRoutes(scope, nodes);
    telemetryRoutes(scope, { db: store.db, clock, nodes, rawRetentionMs: config.telemetryRetentionMs.raw });
    caRoutes(scope, new CaService({ db: store.db, clock, roots }), caRotation);
    ledgerRoutes(scope, ledger);
    const scopeFilter = nodeScope;
    // An open stream asks again now and then, without counting against its address.
    const again = adminTokenCheck(
      (secret) => credentials.byBearer(secret),
      signedIn,
      undefined,
      byCertificate,
    );
    eventRoutes(scope, events, streams, scopeFilter, (request) => again(request).then(() => true));
    commandRoutes(scope, {
      policy: commanding.policy,
      commands: commanding.commands,
      approvals: commanding.approvals,
      queries: commanding.queries,
      scope: scopeFilter,
    });
    jobRoutes(scope, new JobService({ db: store.db, clock, nodes }));
    requestAdminRoutes(scope, requests);
    installAdminRoutes(scope, install);
  });

  await Promise.all([agent.ready(), admin.ready()]);
  return {
    agent,
    admin,
    nodes,
    statusWatcher,
    ledger,
    events,
    streams,
    connections,
    adminTls,
    caRotation,
    applyServerIdentity,
    sessions,
    credentials,
    joinUrl: () => joinUrl(config, boundPort()),
    channels,
    ...(proxied ? { proxied } : {}), // signed-requests
    metrics: observed,
    async close() {
      background.abort();
      // Channels first (they bypass Fastify's connection tracking), then the planes, then
      // whatever heartbeats are still being written, so the store outlives every write.
      await channels.close();
      await commanding.idle();
      if (proxied?.server.listening) proxied.server.close(); // signed-requests
      proxied?.server.closeAllConnections(); // signed-requests
      await Promise.all([agent.close(), admin.close()]);
      await writer.idle();
      await credentials.idle();
    },
  };
}
