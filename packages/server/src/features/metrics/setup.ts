import type { FastifyInstance } from 'fastify';
import type { Core, Feature } from '../feature.js';
import type { MetricSources, Metrics } from './metrics.js';
import { metricsRoute, observabilityRoutes } from './routes.js';

export interface MetricsDeps extends Pick<Core, 'store'> {
  /** Made first by `buildApp`, since every feature counts into it. */
  metrics: Metrics;
  /** What the fleet gauges read when scraped. */
  sources: MetricSources;
  /** The agent plane, whose requests are timed too. */
  agent: FastifyInstance;
}

/** Prometheus metrics: the fleet gauges, request timing on both planes, /healthz, /readyz, /metrics. */
export function setupMetrics(deps: MetricsDeps) {
  const { metrics, store } = deps;
  metrics.observe(deps.sources);
  return {
    adminPublicRoutes: (admin) =>
      observabilityRoutes({ agent: deps.agent, admin }, metrics, () => store.ping()),
    adminRoutes: (scope) => metricsRoute(scope, metrics),
  } satisfies Feature;
}
