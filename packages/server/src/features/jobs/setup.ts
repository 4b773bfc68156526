import type { SignedPolicy } from '@muster/proto';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import type { Store } from '../../store/db.js';
import type { NodeService } from '../nodes/service.js';
import { JobQueries } from './queries.js';
import { JobService } from './service.js';
import { stopJob } from './store.js';
import { JobSubmission } from './submit.js';

export interface JobsSetup {
  store: Store;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
  nodes: Pick<NodeService, 'list'>;
  policy: { current(): Promise<SignedPolicy | null> };
  skewAllowanceMs: number;
}

/** The jobs feature, wired: judging (plan), submission with its ledgered placement, queries, stop. */
export function startJobs(setup: JobsSetup) {
  const { store, write, clock, decisions } = setup;
  const service = new JobService({ db: store.db, clock, nodes: setup.nodes });
  const queries = new JobQueries(store.db);
  const submission = new JobSubmission({
    db: store.db,
    write,
    traits: store.traits,
    clock,
    decisions,
    policy: setup.policy,
    skewAllowanceMs: setup.skewAllowanceMs,
    judge: service,
    queries,
  });
  return {
    service,
    routes: {
      submission,
      queries,
      stop: async (id: string, actor: string) => {
        await stopJob({ write, decisions }, id, actor, clock.now());
      },
    },
  };
}
