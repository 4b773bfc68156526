import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Clock, IdSource } from './clock.js';
import { isLoopback, joinUrl, type ServerConfig } from './config.js';
import type { DecisionRecorder } from './decisions/recorder.js';
import { enrollmentRoutes } from './features/enrollment/routes.js';
import { EnrollmentService } from './features/enrollment/service.js';
import { heartbeatRoutes } from './features/heartbeats/routes.js';
import { HeartbeatWriter } from './features/heartbeats/writer.js';
import { ledgerAgentRoutes, ledgerRoutes } from './features/ledger/routes.js';
import { LedgerService } from './features/ledger/service.js';
import { nodeRoutes } from './features/nodes/routes.js';
import { NodeService } from './features/nodes/service.js';
import { renewalRoutes } from './features/renewal/routes.js';
import { RenewalService } from './features/renewal/service.js';
import { tokenRoutes } from './features/tokens/routes.js';
import { TokenService } from './features/tokens/service.js';
import { adminTokenCheck, nodeIdentityCheck } from './http/auth.js';
import { LiveConnections } from './http/connections.js';
import { createPlane } from './http/fastify.js';
import { OpenApiRecorder } from './http/openapi.js';
import { sendProblem } from './http/problems.js';
import { RateLimiter } from './http/rate-limit.js';
import type { ServerIdentity } from './pki/datadir.js';
import type { Store } from './store/db.js';

export interface AppDeps {
  config: ServerConfig;
  store: Store;
  identity: ServerIdentity;
  clock: Clock;
  ids: IdSource;
  logger: Logger;
  decisions?: DecisionRecorder;
}

/** The control plane, built but not listening. */
export interface MusterApp {
  /** TLS, client certificates requested: enrollment, heartbeats. */
  readonly agent: FastifyInstance;
  /** Bearer token: tokens, nodes, health. */
  readonly admin: FastifyInstance;
  readonly nodes: NodeService;
  readonly ledger: LedgerService;
  readonly connections: LiveConnections;
  /** True when the admin plane serves HTTPS. */
  readonly adminTls: boolean;
  /** The agent-plane URL join lines carry. */
  joinUrl(): string;
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
  // Every decision is a ledger entry, appended in the transaction that makes the change.
  const decisions = deps.decisions ?? ledger.recorder();
  const connections = new LiveConnections();
  const write: Store['write'] = (fn) => store.write(fn);
  const nodes = new NodeService({
    db: store.db,
    write,
    clock,
    decisions,
    connections,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
  });
  const tokens = new TokenService({
    db: store.db,
    write,
    clock,
    ids,
    decisions,
    caPin: identity.ca.pin,
    publicUrl: () => joinUrl(config, boundPort()),
  });
  const enrollment = new EnrollmentService({
    write,
    ledgerKey: ledger.vkey,
    traits: store.traits,
    clock,
    ids,
    decisions,
    ca: identity.ca,
    certLifetimeMs: config.certLifetimeMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
  });
  const writer = new HeartbeatWriter(store.db);
  const renewal = new RenewalService({
    write,
    clock,
    ids,
    decisions,
    ca: identity.ca,
    certLifetimeMs: config.certLifetimeMs,
  });
  // Listening on port 0 picks the port at bind time; join lines must carry the real one.
  const boundPort = () => (agent.server.address() as { port?: number } | null)?.port ?? config.listen.port;

  const agent = createPlane({
    logger,
    plane: 'agent',
    storeUnavailable: (err) => store.traits.isUnavailable(err),
    https: {
      key: identity.serverKeyPem,
      cert: `${identity.serverCertPem.trim()}\n${identity.ca.pem.trim()}\n`,
      ca: [identity.ca.pem],
      requestCert: true,
      // Enrollment comes without a certificate; every other route checks socket.authorized itself.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
  });
  const openapi = new OpenApiRecorder();
  openapi.watch(agent, 'agent');
  agent.decorateRequest('node', null);
  agent.decorateRequest('actor', '');
  enrollmentRoutes(agent, enrollment, new RateLimiter(clock, config.enrollRate, config.enrollRate * 5));
  await agent.register(async (scope) => {
    scope.addHook(
      'onRequest',
      nodeIdentityCheck({
        identityBySerial: (s) => nodes.identityBySerial(s),
        promote: (id, s) => nodes.promote(id, s),
        noteRefusedSerial: (s) => nodes.noteRefusedSerial(s),
        connections,
        clock,
      }),
    );
    renewalRoutes(scope, renewal);
    heartbeatRoutes(scope, {
      writer,
      clock,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      latestCheckpoint: () => ledger.latestCheckpoint(),
    });
    ledgerAgentRoutes(scope, ledger);
  });

  const adminTls = !isLoopback(config.adminListen.host) && !config.adminBehindProxy;
  const admin = createPlane({
    logger,
    plane: 'admin',
    storeUnavailable: (err) => store.traits.isUnavailable(err),
    ...(adminTls
      ? {
          https: config.adminCert
            ? { cert: readFileSync(config.adminCert), key: readFileSync(config.adminKey!) }
            : {
                cert: `${identity.serverCertPem.trim()}\n${identity.ca.pem.trim()}\n`,
                key: identity.serverKeyPem,
              },
        }
      : {}),
  });
  openapi.watch(admin, 'admin');
  admin.decorateRequest('node', null);
  admin.decorateRequest('actor', '');
  admin.get('/openapi.json', async () => openapi.document());
  admin.get('/healthz', async () => ({ status: 'ok' }));
  admin.get('/readyz', async (_request, reply) => {
    try {
      await store.ping();
      return { status: 'ready' };
    } catch {
      return sendProblem(reply, 503, 'store_unreachable', 'the store does not answer');
    }
  });
  await admin.register(async (scope) => {
    scope.addHook('onRequest', adminTokenCheck(identity.adminToken));
    tokenRoutes(scope, tokens);
    nodeRoutes(scope, nodes);
    ledgerRoutes(scope, ledger);
  });

  await Promise.all([agent.ready(), admin.ready()]);
  return {
    agent,
    admin,
    nodes,
    ledger,
    connections,
    adminTls,
    joinUrl: () => joinUrl(config, boundPort()),
    async close() {
      background.abort();
      await Promise.all([agent.close(), admin.close()]);
    },
  };
}
