import {
  type JobExplanation,
  type JobList,
  type JobShardView,
  type JobState,
  type JobSummary,
  type JobView,
  jobSignaturesOf,
  type ShardState,
  type SignedJob,
} from '@muster/proto';
import type { Kysely, Selectable } from 'kysely';
import { NotFoundError } from '../../errors.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { idStartsWith, MAX_PREFIX_CANDIDATES, MIN_ID_PREFIX, onlyMatch } from '../../store/id-prefix.js';
import type { JobsTable, Schema } from '../../store/schema.js';

/** The ledger kinds that decide where a job's shards run, in the order `jobs explain` prints them. */
export const PLACEMENT_KINDS = ['job.placed', 'job.replaced'] as const;

/** Jobs as operators read them: newest first, each shard with its node, state and receipt. */
export class JobQueries {
  constructor(private readonly db: Kysely<Schema>) {}

  async list(query: { limit: number; cursor?: string }): Promise<JobList> {
    let q = this.db.selectFrom('jobs').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc');
    if (query.cursor) {
      const after = decodeCursor(query.cursor, readPosition);
      q = q.where((eb) =>
        eb.or([
          eb('created_at', '<', after.at),
          eb.and([eb('created_at', '=', after.at), eb('id', '<', after.id)]),
        ]),
      );
    }
    const rows = await q.limit(query.limit + 1).execute();
    const page = rows.slice(0, query.limit);
    const counts = new Map<string, Record<string, number>>();
    if (page.length > 0) {
      const shardRows = await this.db
        .selectFrom('job_shards')
        .select(['job_id', 'state', (eb) => eb.fn.countAll().as('n')])
        .where(
          'job_id',
          'in',
          page.map((r) => r.id),
        )
        .groupBy(['job_id', 'state'])
        .execute();
      for (const r of shardRows) counts.set(r.job_id, { ...counts.get(r.job_id), [r.state]: Number(r.n) });
    }
    const last = page.at(-1);
    return {
      items: page.map((row) => summary(row, counts.get(row.id) ?? {})),
      nextCursor: rows.length > query.limit && last ? encodeCursor([Number(last.created_at), last.id]) : null,
    };
  }

  /** A job by its id, or by a prefix only one job's id starts with. */
  async get(idOrPrefix: string): Promise<JobView> {
    const row = await this.row(idOrPrefix);
    const shards = await this.db
      .selectFrom('job_shards as s')
      .innerJoin('nodes as n', 'n.id', 's.node_id')
      .select([
        's.shard',
        's.node_id',
        'n.name',
        's.state',
        's.attempt',
        's.reason',
        's.receipt',
        's.updated_at',
      ])
      .where('s.job_id', '=', row.id)
      .orderBy('s.shard')
      .execute();
    const counts: Record<string, number> = {};
    const items: JobShardView[] = shards.map((s) => {
      counts[s.state] = (counts[s.state] ?? 0) + 1;
      return {
        shard: Number(s.shard),
        nodeId: s.node_id,
        name: s.name,
        state: s.state as ShardState,
        attempt: Number(s.attempt),
        ...(s.reason !== null ? { reason: s.reason } : {}),
        updatedAt: new Date(Number(s.updated_at)).toISOString(),
        ...(s.receipt !== null ? { receipt: JSON.parse(s.receipt) } : {}),
      };
    });
    const signed = JSON.parse(row.signed) as SignedJob;
    const placements = await this.placementRows(row.id, false);
    return {
      ...summary(row, counts),
      shards: items,
      approvals: {
        required: Number(row.approvals_required),
        signers: jobSignaturesOf(signed).map((s) => ({ operator: s.operator, user: null, signedAt: null })),
      },
      job: signed.job,
      placements: placements.map((p) => ({
        seq: Number(p.seq),
        kind: p.kind,
        ts: new Date(Number(p.ts)).toISOString(),
      })),
    };
  }

  /** The placement entries of a job, byte for byte as the ledger hashed them. */
  async explain(idOrPrefix: string): Promise<JobExplanation> {
    const row = await this.row(idOrPrefix);
    const entries = await this.placementRows(row.id, true);
    return { id: row.id, entries: entries.map((e) => ({ seq: Number(e.seq), entry: e.entry })) };
  }

  private async placementRows(id: string, withEntry: boolean) {
    return this.db
      .selectFrom('ledger_entries')
      .select(['seq', 'kind', 'ts', ...(withEntry ? (['entry'] as const) : [])])
      .where('subject', '=', `job:${id}`)
      .where('kind', 'in', [...PLACEMENT_KINDS])
      .orderBy('seq')
      .execute() as Promise<{ seq: number; kind: string; ts: number; entry: string }[]>;
  }

  private async row(idOrPrefix: string): Promise<Selectable<JobsTable>> {
    const exact = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('id', '=', idOrPrefix)
      .executeTakeFirst();
    if (exact) return exact;
    if (idOrPrefix.length < MIN_ID_PREFIX) throw new NotFoundError(`no job ${idOrPrefix}`);
    const rows = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where(idStartsWith(idOrPrefix))
      .orderBy('id')
      .limit(MAX_PREFIX_CANDIDATES + 1)
      .execute();
    return onlyMatch(rows, idOrPrefix, 'job');
  }
}

function summary(row: Selectable<JobsTable>, shards: Record<string, number>): JobSummary {
  return {
    id: row.id,
    action: row.action,
    operator: row.operator,
    state: row.state as JobState,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    shards,
  };
}

function readPosition(value: unknown): { at: number; id: string } | undefined {
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    Number.isSafeInteger(value[0]) &&
    typeof value[1] === 'string'
  )
    return { at: value[0], id: value[1] };
  return undefined;
}
