import type { LiveConnections } from '../../http/connections.js';
import type { Core, Feature } from '../feature.js';
import type { HeartbeatPacer } from '../heartbeats/pacer.js';
import type { LedgerService } from '../ledger/service.js';
import type { Metrics } from '../metrics/metrics.js';
import { enrollmentRoutes } from './routes.js';
import { EnrollmentService } from './service.js';

/** Enrollments per address may come in bursts of this many times the per-second rate. */
export const ENROLL_BURST = 5;

export interface EnrollmentDeps
  extends Pick<
    Core,
    'config' | 'store' | 'write' | 'clock' | 'ids' | 'decisions' | 'identity' | 'roots' | 'rateLimits'
  > {
  ledger: Pick<LedgerService, 'vkey'>;
  connections: LiveConnections;
  pacer: Pick<HeartbeatPacer, 'intervalMs'>;
  metrics: Pick<Metrics, 'enrollments'>;
}

/** Enrollment with a token: a CSR in, a node certificate out, limited per address. */
export function setupEnrollment(deps: EnrollmentDeps) {
  const { config, store, clock } = deps;
  const enrollment = new EnrollmentService({
    db: store.db,
    write: deps.write,
    ledgerKey: deps.ledger.vkey,
    fleetRoot: deps.identity.fleetRoot.publicKey,
    traits: store.traits,
    clock,
    ids: deps.ids,
    decisions: deps.decisions,
    roots: deps.roots,
    connections: deps.connections,
    certLifetimeMs: config.certLifetimeMs,
    heartbeatIntervalMs: () => deps.pacer.intervalMs(),
  });
  const limiter = deps.rateLimits('enroll', config.enrollRate, config.enrollRate * ENROLL_BURST);
  const counted = {
    enroll: async (request: Parameters<EnrollmentService['enroll']>[0]) => {
      const enrolled = await enrollment.enroll(request);
      deps.metrics.enrollments.inc();
      return enrolled;
    },
  };
  return { agentPublicRoutes: (scope) => enrollmentRoutes(scope, counted, limiter) } satisfies Feature;
}
