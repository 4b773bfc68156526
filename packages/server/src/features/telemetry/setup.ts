import type { Core, Feature } from '../feature.js';
import type { NodeService } from '../nodes/service.js';
import { telemetryRoutes } from './routes.js';
import { sweep } from './store.js';

/** How often telemetry older than its retention is removed. */
const SWEEP_MS = 60_000;

/** Telemetry: the samples heartbeats carry, rolled up, served per node and swept by age. */
export function setupTelemetry(
  deps: Pick<Core, 'config' | 'store' | 'clock' | 'logger'> & { nodes: Pick<NodeService, 'get'> },
) {
  const { config, store, clock, logger } = deps;
  return {
    adminRoutes: (scope) =>
      telemetryRoutes(scope, {
        db: store.db,
        clock,
        nodes: deps.nodes,
        rawRetentionMs: config.telemetryRetentionMs.raw,
      }),
    start(signal) {
      const sweeper = setInterval(() => {
        sweep(store.db, clock.now(), config.telemetryRetentionMs).catch((err) =>
          logger.warn({ err }, 'could not remove old telemetry'),
        );
      }, SWEEP_MS);
      sweeper.unref();
      signal.addEventListener('abort', () => clearInterval(sweeper));
    },
  } satisfies Feature;
}
