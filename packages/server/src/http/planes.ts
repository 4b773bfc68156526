import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { isLoopback, joinUrl, type ServerConfig } from '../config.js';
import type { ServerIdentity } from '../pki/datadir.js';
import type { FleetRoots } from '../pki/fleet.js';
import { serverChain } from '../pki/server-identity.js';
import type { Store } from '../store/db.js';
import {
  type ConnectionBudget,
  ConnectionGuard,
  defaultAgentConnections,
  type RefusedReason,
} from './connections.js';
import { createPlane } from './fastify.js';
import { AdminHosts } from './host-check.js';
import { OpenApiRecorder } from './openapi.js';

export interface PlanesDeps {
  config: ServerConfig;
  identity: ServerIdentity;
  roots: Pick<FleetRoots, 'trusted'>;
  logger: Logger;
  store: Pick<Store, 'traits'>;
  /** A connection closed before being served, for the metrics. */
  onRefused(plane: 'agent' | 'admin', reason: RefusedReason): void;
}

/** The two planes, made and guarded but with no feature routes yet. */
export interface Planes {
  /** TLS, client certificates requested: enrollment, heartbeats, channels. */
  agent: FastifyInstance;
  /** Credentials: operators, the console, the CLI. */
  admin: FastifyInstance;
  /** True when the admin plane serves HTTPS. */
  adminTls: boolean;
  adminHosts: AdminHosts;
  openapi: OpenApiRecorder;
  /** The agent-plane URL join lines carry. */
  joinUrl(): string;
  /** Puts the server identity and the trusted roots in front of new connections on both planes. */
  applyServerIdentity(): void;
  connectionsOpen(): Record<'agent' | 'admin', number>;
}

/** Makes both planes: TLS, connection budgets, the request decorations and the OpenAPI recorder. */
export function createPlanes(deps: PlanesDeps): Planes {
  const { config, identity, roots, logger } = deps;
  const { admin: adminBudget, agent: agentBudget } = config.connections;
  const storeUnavailable = (err: unknown) => deps.store.traits.isUnavailable(err);
  const tls = { minVersion: 'TLSv1.2', handshakeTimeout: config.connections.handshakeTimeoutMs } as const;
  const agent = createPlane({
    logger,
    plane: 'agent',
    storeUnavailable,
    // Enrollment comes without a certificate; every other route checks socket.authorized itself.
    https: {
      key: identity.serverKeyPem,
      cert: serverChain(identity),
      ca: roots.trusted().map((ca) => ca.pem),
      requestCert: true,
      rejectUnauthorized: false,
      ...tls,
    },
  });
  const guard = (plane: 'agent' | 'admin', app: FastifyInstance, budget: ConnectionBudget, plain: boolean) =>
    new ConnectionGuard({
      plane,
      budget,
      handshakeTimeoutMs: config.connections.handshakeTimeoutMs,
      plainHttp: plain,
      onRefused: (reason) => deps.onRefused(plane, reason),
      logger,
    }).attach(app.server);
  const agentTotal = agentBudget.total ?? defaultAgentConnections(adminBudget.total);
  const agentGuard = guard('agent', agent, { ...agentBudget, total: agentTotal }, false);

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
    storeUnavailable,
    ...(adminTls
      ? {
          https: {
            ...(adminIdentity ?? { cert: serverChain(identity), key: identity.serverKeyPem }),
            // Asked for, never required: a personal certificate from `muster login` is one
            // credential among others, checked on every request (user-certificates.ts).
            ca: roots.trusted().map((root) => root.pem),
            requestCert: true,
            rejectUnauthorized: false,
            ...tls,
          },
        }
      : {}),
  });
  // Behind a TLS proxy every connection comes from the proxy: one source, the whole budget.
  const adminShare = config.adminBehindProxy ? adminBudget.total : adminBudget.perSource;
  const adminGuard = guard('admin', admin, { ...adminBudget, perSource: adminShare }, !adminTls);

  const openapi = describe(agent, admin);

  // Listening on port 0 picks the port at bind time; join lines must carry the real one.
  const boundPort = () => (agent.server.address() as { port?: number } | null)?.port ?? config.listen.port;
  return {
    agent,
    admin,
    adminTls,
    adminHosts,
    openapi,
    joinUrl: () => joinUrl(config, boundPort()),
    applyServerIdentity: () =>
      applyServerIdentity({ agent, admin, adminTls, adminIdentity, identity, roots }),
    connectionsOpen: () => ({ agent: agentGuard.size, admin: adminGuard.size }),
  };
}

/** The OpenAPI recorder on both planes, the request decorations, and `GET /openapi.json`. */
function describe(agent: FastifyInstance, admin: FastifyInstance): OpenApiRecorder {
  const openapi = new OpenApiRecorder();
  openapi.watch(agent, 'agent');
  agent.decorateRequest('node', null);
  agent.decorateRequest('actor', '');
  openapi.watch(admin, 'admin');
  admin.decorateRequest('node', null);
  admin.decorateRequest('actor', '');
  admin.decorateRequest('consoleSession', null);
  admin.decorateRequest('principal', null);
  admin.decorateRequest('denyAccess', null);
  admin.get('/openapi.json', async () => openapi.document());
  return openapi;
}

/** Puts the server identity and the trusted roots in front of new connections on both planes. */
function applyServerIdentity(p: {
  agent: FastifyInstance;
  admin: FastifyInstance;
  adminTls: boolean;
  adminIdentity: { cert: Buffer; key: Buffer } | undefined;
  identity: ServerIdentity;
  roots: Pick<FleetRoots, 'trusted'>;
}): void {
  const plane = (app: FastifyInstance) => app.server as unknown as HttpsServer;
  const cert = serverChain(p.identity);
  const key = p.identity.serverKeyPem;
  const ca = p.roots.trusted().map((root) => root.pem);
  plane(p.agent).setSecureContext({ key, cert, ca, minVersion: 'TLSv1.2' });
  // The admin plane presents the server identity too, unless an operator gave it its own;
  // either way it asks for personal certificates from the roots trusted now.
  if (p.adminTls)
    plane(p.admin).setSecureContext({ ...(p.adminIdentity ?? { key, cert }), ca, minVersion: 'TLSv1.2' });
}
