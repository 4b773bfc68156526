import type { Core, Feature } from '../feature.js';
import type { NodeService } from '../nodes/service.js';
import { jobRoutes } from './routes.js';
import { JobService } from './service.js';

/** Jobs: plans of commands over the fleet. */
export function setupJobs(deps: Pick<Core, 'store' | 'clock'> & { nodes: Pick<NodeService, 'list'> }) {
  const jobs = new JobService({ db: deps.store.db, clock: deps.clock, nodes: deps.nodes });
  return { adminRoutes: (scope) => jobRoutes(scope, jobs) } satisfies Feature;
}
