import type { SignedPolicy } from '@muster/proto';
import type { Core, Feature } from '../feature.js';
import type { NodeService } from '../nodes/service.js';
import { JobQueries } from './queries.js';
import { jobRoutes } from './routes.js';
import { JobService } from './service.js';
import { stopJob } from './store.js';
import { JobSubmission } from './submit.js';

export interface JobsDeps extends Pick<Core, 'config' | 'store' | 'write' | 'clock' | 'decisions'> {
  nodes: Pick<NodeService, 'list'>;
  policy: { current(): Promise<SignedPolicy | null> };
}

/** Jobs: judging (plan), signed submission with its ledgered placement, queries, stop. */
export function setupJobs(deps: JobsDeps) {
  const { store, write, clock, decisions } = deps;
  const service = new JobService({ db: store.db, clock, nodes: deps.nodes });
  const queries = new JobQueries(store.db);
  const submission = new JobSubmission({
    db: store.db,
    write,
    traits: store.traits,
    clock,
    decisions,
    policy: deps.policy,
    skewAllowanceMs: deps.config.clockSkewAllowanceMs,
    judge: service,
    queries,
  });
  const routes = {
    submission,
    queries,
    stop: async (id: string, actor: string) => {
      await stopJob({ write, decisions }, id, actor, clock.now());
    },
  };
  return { adminRoutes: (scope) => jobRoutes(scope, service, routes) } satisfies Feature;
}
