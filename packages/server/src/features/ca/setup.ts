import type { Core, Feature } from '../feature.js';
import { CaRotationService, startCaSync } from './rotation.js';
import { caRoutes } from './routes.js';
import { CaService } from './service.js';

export interface CaDeps
  extends Pick<Core, 'store' | 'write' | 'clock' | 'ids' | 'decisions' | 'identity' | 'roots' | 'logger'> {
  /** Re-issues the server's TLS certificate when the fleet CA it must come from changed. */
  renewServerIdentity?: () => Promise<unknown>;
  /** Puts the server identity and the trusted roots in front of new connections. */
  applyServerIdentity(): void;
}

/** The fleet CA: its status, and its rotation, taken up from other replicas by a sync loop. */
export function setupCa(deps: CaDeps) {
  const { store, clock, logger } = deps;
  const caRotation = new CaRotationService({
    db: store.db,
    write: deps.write,
    clock,
    ids: deps.ids,
    decisions: deps.decisions,
    identity: deps.identity,
    refreshServerCertificate: async () => {
      await deps.renewServerIdentity?.();
    },
    applyTls: () => deps.applyServerIdentity(),
    notifications: store.notifications, // a rotation reaches every replica by NOTIFY
  });
  const ca = new CaService({ db: store.db, clock, roots: deps.roots });
  return {
    caRotation,
    adminRoutes: (scope) => caRoutes(scope, ca, caRotation),
    start: (signal) => startCaSync(caRotation, store.notifications, signal, logger),
  } satisfies Feature & { caRotation: CaRotationService };
}
