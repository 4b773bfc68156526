import { type Static, Type } from '@sinclair/typebox';
import { type Command, CommandApprovals, CommandSignature, MAX_APPROVALS, Receipt } from './commands.js';
import { Job } from './jobs.js';

/**
 * Jobs on the wire: `POST /v1/jobs` takes `{job, signature}` or `{job, signatures}` exactly as
 * `POST /v1/commands` takes a command (CONTRACT sections 8 and 9), and the views it answers with.
 */
export const SignedJob = Type.Union([
  Type.Object({ job: Job, signature: Type.String({ maxLength: 128 }) }, { additionalProperties: false }),
  Type.Object(
    { job: Job, signatures: Type.Array(CommandSignature, { minItems: 1, maxItems: MAX_APPROVALS }) },
    { additionalProperties: false },
  ),
]);
export type SignedJob = Static<typeof SignedJob>;

/** Every signature a signed job carries, a lone `signature` being its operator's. */
export function jobSignaturesOf(signed: SignedJob): CommandSignature[] {
  return 'signatures' in signed
    ? signed.signatures
    : [{ operator: signed.job.operator, signature: signed.signature }];
}

export function jobWithSignatures(job: Job, signatures: readonly CommandSignature[]): SignedJob {
  const [only] = signatures;
  return signatures.length === 1 && only!.operator === job.operator
    ? { job, signature: only!.signature }
    : { job, signatures: signatures.map(({ operator, signature }) => ({ operator, signature })) };
}

export const JOB_STATES = ['awaiting_approval', 'placed', 'stopped'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const SHARD_STATES = [
  'pending',
  'delivered',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'rejected',
  'interrupted',
  'expired',
  'stopped',
] as const;
export type ShardState = (typeof SHARD_STATES)[number];
export const FINAL_SHARD_STATES: readonly ShardState[] = [
  'succeeded',
  'failed',
  'timed_out',
  'rejected',
  'interrupted',
  'expired',
  'stopped',
];

export const JobShardView = Type.Object({
  shard: Type.Integer(),
  nodeId: Type.String(),
  name: Type.String(),
  state: Type.Union(SHARD_STATES.map((s) => Type.Literal(s))),
  attempt: Type.Integer(),
  reason: Type.Optional(Type.String()),
  updatedAt: Type.String(),
  receipt: Type.Optional(Receipt),
});
export type JobShardView = Static<typeof JobShardView>;

export const JobSummary = Type.Object({
  id: Type.String(),
  action: Type.String(),
  operator: Type.String(),
  state: Type.Union(JOB_STATES.map((s) => Type.Literal(s))),
  createdAt: Type.String(),
  /** Shards by state: `{succeeded: 2, running: 1}`. */
  shards: Type.Record(Type.String(), Type.Integer()),
});
export type JobSummary = Static<typeof JobSummary>;

export const JobView = Type.Object({
  ...JobSummary.properties,
  shards: Type.Array(JobShardView),
  approvals: CommandApprovals,
  job: Job,
  /** The ledger sequence of each placement decision (`job.placed`), in order. */
  placements: Type.Array(Type.Object({ seq: Type.Integer(), kind: Type.String(), ts: Type.String() })),
});
export type JobView = Static<typeof JobView>;

export const JobList = Type.Object({
  items: Type.Array(JobSummary),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
export type JobList = Static<typeof JobList>;

/** `GET /v1/jobs/:id/explain`: the placement entries, byte for byte as ledgered. */
export const JobExplanation = Type.Object({
  id: Type.String(),
  entries: Type.Array(Type.Object({ seq: Type.Integer(), entry: Type.String() })),
});
export type JobExplanation = Static<typeof JobExplanation>;

/**
 * One shard of a job as the command checks read it (timing, policy, arguments): the job's signed
 * fields with the shard's arguments merged over the job's. Never sent or signed as a command.
 */
export function jobShardCommand(job: Job, shard: number): Command {
  const extra = job.shards?.[shard] ?? {};
  return {
    v: 1,
    id: job.id,
    nonce: job.nonce,
    issuedAt: job.issuedAt,
    expiresAt: job.expiresAt,
    operator: job.operator,
    target: job.select,
    action: job.action,
    args: { ...job.args, ...extra },
  };
}
