import type { FastifyInstance } from 'fastify';
import type { AdminAuth, Feature } from './features/feature.js';
import type { Metrics } from './features/metrics/metrics.js';
import type { ProxiedPlane } from './features/signed/index.js';
import { nodeIdentityCheck, type SocketIdentityDeps } from './http/auth.js';
import type { Planes } from './http/planes.js';
import type { Store } from './store/db.js';

/** The store's write, timed into `muster_store_write_duration_seconds`. */
export function timedWrite(
  write: Store['write'],
  metrics: Pick<Metrics, 'storeWriteSeconds'>,
): Store['write'] {
  return (fn) => {
    const done = metrics.storeWriteSeconds.startTimer();
    return write(fn).finally(() => done());
  };
}

/**
 * Mounts every feature's routes on the planes, in the order the features are listed: the agent
 * plane's open routes, then its scope for enrolled nodes (client certificate checked), then the
 * admin plane's open routes, then its scope behind `gate` (credential and access guard).
 */
export async function mount(
  planes: Pick<Planes, 'agent' | 'admin' | 'openapi'>,
  features: readonly Feature[],
  gate: (scope: FastifyInstance) => AdminAuth,
  socketIdentity: SocketIdentityDeps,
  /** With --proxied-listen, requests from there are identified by their signature instead. */
  proxied?: ProxiedPlane,
): Promise<void> {
  const { agent, admin, openapi } = planes;
  for (const feature of features) feature.agentPublicRoutes?.(agent);
  await agent.register(async (scope) => {
    const byCertificate = nodeIdentityCheck(socketIdentity);
    scope.addHook('onRequest', proxied ? proxied.orCertificate(byCertificate) : byCertificate);
    if (proxied) scope.addHook('preParsing', proxied.preParsing);
    openapi.secured(scope, [{ nodeCertificate: [] }]);
    for (const feature of features) feature.agentRoutes?.(scope);
  });
  for (const feature of features) feature.adminPublicRoutes?.(admin);
  await admin.register(async (scope) => {
    const auth = gate(scope);
    openapi.secured(scope, [{ adminToken: [] }, { consoleSession: [] }, { userCertificate: [] }]);
    for (const feature of features) feature.adminRoutes?.(scope, auth);
  });
}

/**
 * Stops the loops, then each feature's `stop` (channels, which Fastify does not track, before the
 * commands they deliver), then the planes, then each `idle`, so the store outlives every write.
 * Features go in reverse order: a feature stops before those it depends on.
 */
export async function closeAll(
  background: AbortController,
  planes: Pick<Planes, 'agent' | 'admin'>,
  features: readonly Feature[],
): Promise<void> {
  background.abort();
  const reversed = [...features].reverse();
  for (const feature of reversed) await feature.stop?.();
  await Promise.all([planes.agent.close(), planes.admin.close()]);
  for (const feature of reversed) await feature.idle?.();
}
