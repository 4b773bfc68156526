import {
  candidateOf,
  HISTORY_HALF_LIFE_MS,
  type Job,
  jobFleetProblem,
  jobProblems,
  type NodeView,
  type Placement,
  type PlacementCandidate,
  place,
  type ReceiptStatus,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import { BadRequestError } from '../../errors.js';
import type { Schema } from '../../store/schema.js';
import type { NodeService } from '../nodes/service.js';

export interface JobServiceDeps {
  db: Kysely<Schema>;
  clock: Clock;
  nodes: Pick<NodeService, 'list'>;
}

/** Answers older than this weigh under 1/256 of a fresh one: not worth reading. */
const HISTORY_WINDOW_MS = 8 * HISTORY_HALF_LIFE_MS;
const ANSWERED = ['succeeded', 'failed', 'timed_out', 'interrupted', 'rejected', 'expired'] as const;
const CHUNK = 500;

/** Judging a job against the fleet: where it would go and why. Nothing is stored here. */
export class JobService {
  constructor(private readonly deps: JobServiceDeps) {}

  async plan(job: Job): Promise<Placement> {
    return (await this.judge(job)).placement;
  }

  /** The placement of `job` over the fleet as it is now, and the nodes it was judged over. */
  async judge(job: Job): Promise<{ placement: Placement; nodes: NodeView[]; now: number }> {
    const now = this.deps.clock.now();
    const problem = jobProblems(job, now)[0];
    if (problem) throw new BadRequestError(`body.${problem.field} ${problem.message}`, 'invalid_job');
    const nodes = await this.activeNodes();
    const tooMany = jobFleetProblem(job, nodes.length);
    if (tooMany) throw new BadRequestError(`body.${tooMany.field} ${tooMany.message}`, 'invalid_job');
    const history = await this.history(
      job.action,
      nodes.map((n) => n.id),
      now,
    );
    const candidates = nodes.map((n) => candidateOf(n, history.get(n.id) ?? []));
    return { placement: place({ job, candidates, now }), nodes, now };
  }

  private async activeNodes(): Promise<NodeView[]> {
    const out: NodeView[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.deps.nodes.list({ limit: 1000, ...(cursor ? { cursor } : {}) });
      out.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return out;
  }

  /** This action's answers on each node, from the command receipts: when it ended and how. */
  private async history(
    action: string,
    nodeIds: readonly string[],
    now: number,
  ): Promise<Map<string, PlacementCandidate['history'][number][]>> {
    const byNode = new Map<string, PlacementCandidate['history'][number][]>();
    for (let i = 0; i < nodeIds.length; i += CHUNK) {
      const rows = await this.deps.db
        .selectFrom('command_targets as t')
        .innerJoin('commands as c', 'c.id', 't.command_id')
        .select(['t.node_id', 't.state', 't.updated_at'])
        .where('c.action', '=', action)
        .where('t.node_id', 'in', nodeIds.slice(i, i + CHUNK))
        .where('t.state', 'in', [...ANSWERED])
        .where('t.updated_at', '>=', now - HISTORY_WINDOW_MS)
        .execute();
      for (const row of rows) {
        const list = byNode.get(row.node_id) ?? [];
        list.push({
          finishedAt: new Date(Number(row.updated_at)).toISOString(),
          status: row.state as ReceiptStatus | 'expired',
        });
        byNode.set(row.node_id, list);
      }
    }
    return byNode;
  }
}
