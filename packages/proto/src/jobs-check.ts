import { type Static, Type } from '@sinclair/typebox';
import type { Policy } from './commands.js';
import { canonicalJson } from './jcs.js';
import { jobSignatureValid } from './jobs.js';
import { jobSha256, type PlacedEntryData } from './jobs-ledger.js';
import { jobShardCommand, jobSignaturesOf, SignedJob } from './jobs-wire.js';
import { leafHash, verifyInclusion } from './merkle.js';
import { type Checkpoint, NoteError, openCheckpoint, type Verifier } from './note.js';
import {
  approvalsRequired,
  authorize,
  CommandRefused,
  checkTiming,
  findOperator,
  isTargeted,
  operatorMayRunOn,
} from './policy.js';

/**
 * What a node is sent for one shard of a job (CONTRACT section 9): the job as the operators
 * signed it, which shard is its, and the ledger's word that it was placed there — the
 * `job.placed` entry as hashed, its sequence, its inclusion proof and the checkpoint it proves
 * into. The node believes none of it until `checkJobShard` says so.
 */
export const JobShardDelivery = Type.Object(
  {
    signed: SignedJob,
    shard: Type.Integer({ minimum: 0 }),
    entry: Type.String({ maxLength: 16 * 2 ** 20 }),
    seq: Type.Integer({ minimum: 0 }),
    proof: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 }),
    checkpoint: Type.String({ maxLength: 4096 }),
  },
  { additionalProperties: false },
);
export type JobShardDelivery = Static<typeof JobShardDelivery>;

export interface JobShardNode {
  id: string;
  name: string;
  profile: string;
  labels: Readonly<Record<string, string>>;
}

/** Why a node refuses a shard: the receipt's `rejected` reason. */
export class ShardRefused extends Error {
  constructor(
    message: string,
    readonly code: 'signature' | 'policy' | 'select' | 'entry' | 'inclusion' | 'checkpoint',
  ) {
    super(message);
    this.name = 'ShardRefused';
  }
}

/**
 * Every check a node makes before it runs a shard, in order: the operators' signatures (as many
 * distinct valid ones as the action needs), its policy (action, arguments, timing), the job's
 * `select`, the `job.placed` entry (this job, this node for this shard), and the entry's
 * inclusion in the signed checkpoint. Returns the argv to run and the checkpoint, which the
 * caller must still find consistent with the one it holds; throws ShardRefused otherwise.
 */
export function checkJobShard(
  delivery: JobShardDelivery,
  ctx: { node: JobShardNode; policy: Policy; verifier: Verifier; now: number; skewAllowanceMs: number },
): { argv: string[]; checkpoint: Checkpoint } {
  const { job } = delivery.signed;
  const { node, policy } = ctx;
  const command = jobShardCommand(job, delivery.shard);
  const valid = new Set<string>();
  for (const { operator: name, signature } of jobSignaturesOf(delivery.signed)) {
    const operator = findOperator(policy, name);
    if (
      operator &&
      operatorMayRunOn(operator, node.profile) &&
      jobSignatureValid(job, signature, operator.publicKey)
    )
      valid.add(operator.publicKey);
  }
  const own = findOperator(policy, job.operator);
  if (
    !own ||
    !jobSignaturesOf(delivery.signed).some((s) => s.operator === job.operator && valid.has(own.publicKey))
  )
    throw new ShardRefused(`the job carries no valid signature by its operator ${job.operator}`, 'signature');
  const required = approvalsRequired(policy, job.action, node.profile);
  if (valid.size < required)
    throw new ShardRefused(
      `action ${job.action} needs ${required} operators' signatures; ${valid.size} valid`,
      'signature',
    );
  let argv: string[];
  try {
    checkTiming(command, ctx.now, ctx.skewAllowanceMs);
    argv = authorize(policy, command, node.profile);
  } catch (err) {
    if (err instanceof CommandRefused)
      throw new ShardRefused(err.message.replace('the command', 'the job'), 'policy');
    throw err;
  }
  if (!isTargeted(job.select, node))
    throw new ShardRefused("this node is outside the job's select", 'select');
  checkEntry(delivery, node.id);
  let checkpoint: Checkpoint;
  try {
    checkpoint = openCheckpoint(delivery.checkpoint, ctx.verifier);
  } catch (err) {
    if (err instanceof NoteError)
      throw new ShardRefused(`the checkpoint does not verify: ${err.message}`, 'checkpoint');
    throw err;
  }
  const proof = delivery.proof.map((h) => Buffer.from(h, 'base64'));
  if (!verifyInclusion(delivery.seq, checkpoint.size, leafHash(delivery.entry), proof, checkpoint.root))
    throw new ShardRefused(
      `the job.placed entry is not in the ledger: no inclusion at seq ${delivery.seq} in checkpoint ${checkpoint.size}`,
      'inclusion',
    );
  return { argv, checkpoint };
}

/** The entry must be canonical, `job.placed`, for this exact job, and give this shard to this node. */
function checkEntry(delivery: JobShardDelivery, nodeId: string): void {
  const { job } = delivery.signed;
  let entry: { seq?: unknown; kind?: unknown; subject?: unknown; data?: PlacedEntryData };
  try {
    entry = JSON.parse(delivery.entry);
  } catch {
    throw new ShardRefused('the job.placed entry is not JSON', 'entry');
  }
  if (canonicalJson(entry) !== delivery.entry)
    throw new ShardRefused('the job.placed entry is not in canonical form', 'entry');
  if (entry.kind !== 'job.placed' || entry.subject !== `job:${job.id}` || entry.seq !== delivery.seq)
    throw new ShardRefused(`the entry sent is not the job.placed entry of job ${job.id}`, 'entry');
  const data = entry.data;
  if (!data || data.jobSha256 !== jobSha256(job))
    throw new ShardRefused('the job.placed entry is for other job content than the job signed', 'entry');
  if (!Array.isArray(data.shards) || data.shards[delivery.shard] !== nodeId)
    throw new ShardRefused(
      `the job.placed entry does not place shard ${delivery.shard} on this node`,
      'entry',
    );
}
