import {
  approvalsRequired,
  authorize,
  CommandRefused,
  type CommandSignature,
  checkTiming,
  findOperator,
  type Job,
  type JobView,
  jobShardCommand,
  jobSignaturesOf,
  jobSignatureValid,
  jobWithSignatures,
  type NodeView,
  type Placement,
  type Policy,
  placedEntryData,
  REASON_CODES,
  reasonCode,
  type SignedJob,
  type SignedPolicy,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import {
  AppError,
  BadRequestError,
  ConflictError,
  ForbiddenError,
  UnprocessableError,
} from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { DialectTraits } from '../../store/dialect.js';
import type { Schema } from '../../store/schema.js';
import type { Gate } from '../commands/service.js';
import { refuseRepeat, type Signer, usersOf } from '../commands/signers.js';
import type { JobQueries } from './queries.js';
import type { JobService } from './service.js';
import { checkJobSignature, jobSignerRefusal } from './signers.js';
import { storeJob } from './store.js';

export interface JobSubmissionDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  traits: DialectTraits;
  clock: Clock;
  decisions: DecisionRecorder;
  policy: { current(): Promise<SignedPolicy | null> };
  skewAllowanceMs: number;
  judge: Pick<JobService, 'judge'>;
  queries: Pick<JobQueries, 'get'>;
  /** Called after a job's placement is committed, to deliver its shards. */
  onPlaced?(jobId: string): void;
}

/**
 * Accepting signed jobs: every signature, the policy and the timing are checked as for a
 * command, then the job is placed and the placement ledgered (`job.placed`) in the transaction
 * that stores the job and its shards. A job that needs more approvals than it carries waits,
 * unplaced, as `awaiting_approval`.
 */
export class JobSubmission {
  constructor(private readonly deps: JobSubmissionDeps) {}

  async submit(signed: SignedJob, actor: string, gate?: Gate): Promise<JobView> {
    const { job } = signed;
    const policy = await this.policyInForce();
    const signatures = jobSignaturesOf(signed);
    const own = signatures.find((s) => s.operator === job.operator);
    if (!own)
      throw new BadRequestError(
        `the job carries no signature by its operator ${job.operator}`,
        'bad_signature',
      );
    const operator = findOperator(policy, job.operator);
    if (!operator)
      throw new ForbiddenError(`operator ${job.operator} is not in the policy`, 'unknown_operator');
    if (!jobSignatureValid(job, own.signature, operator.publicKey))
      throw new BadRequestError(
        `the job's signature does not verify with operator ${job.operator}'s key`,
        'bad_signature',
      );
    const { placement, nodes, now } = await this.deps.judge.judge(job);
    refuseWith(() => checkTiming(jobShardCommand(job, 0), now, this.deps.skewAllowanceMs));
    const chosen = chosenNodes(placement, nodes);
    await gate?.targets(chosen);
    const profiles = [...new Set(chosen.map((n) => n.profile))];
    for (const [shard, node] of chosen.entries())
      refuseWith(() => authorize(policy, jobShardCommand(job, shard), node.profile));
    const signers = await this.signers(
      policy,
      job,
      [own, ...signatures.filter((s) => s !== own)],
      chosen,
      gate,
    );
    const required = Math.max(1, ...profiles.map((p) => approvalsRequired(policy, job.action, p)));
    const kept = signers.slice(0, Math.max(required, 1));
    const stored = jobWithSignatures(job, kept);
    const awaiting = kept.length < required;
    await storeJob(this.deps, {
      signed: stored,
      signers: kept,
      required,
      actor,
      now,
      placement: awaiting ? undefined : placedEntryData(job, kept, placement, now),
    });
    if (!awaiting) this.deps.onPlaced?.(job.id);
    return this.deps.queries.get(job.id);
  }

  private async policyInForce(): Promise<Policy> {
    const signed = await this.deps.policy.current();
    if (!signed)
      throw new ConflictError(
        'no command policy is in force yet: sign one and run "muster policy push"',
        'no_policy',
      );
    return signed.policy;
  }

  /** Checks every signature the job came with, and that each signer's user may submit or approve jobs. */
  private async signers(
    policy: Policy,
    job: Job,
    signatures: CommandSignature[],
    nodes: NodeView[],
    gate: Gate | undefined,
  ): Promise<Signer[]> {
    const users = await usersOf(
      this.deps.db,
      signatures.map((s) => s.operator),
    );
    const profiles = [...new Set(nodes.map((n) => n.profile))];
    const signers: Signer[] = [];
    for (const [i, signature] of signatures.entries()) {
      const signer = {
        ...checkJobSignature(policy, job, signature, profiles),
        user: users.get(signature.operator) ?? null,
      };
      refuseRepeat(
        signer,
        signers,
        (m) => new BadRequestError(m.replace('command', 'job'), 'duplicate_signer'),
      );
      const refusal = await jobSignerRefusal(this.deps.db, signer, i === 0 ? 'create' : 'approve', nodes);
      if (refusal) await (gate ? gate.deny(refusal) : Promise.reject(new ForbiddenError(refusal)));
      signers.push(signer);
    }
    return signers;
  }
}

/** The chosen nodes in shard order; a job no node is eligible for is refused with the reasons. */
function chosenNodes(placement: Placement, nodes: readonly NodeView[]): NodeView[] {
  if (placement.chosen.length === 0) {
    const reasons = new Map<string, number>();
    for (const n of placement.rejected)
      for (const r of n.reasons) {
        const code = reasonCode(r).split(':')[0] as keyof typeof REASON_CODES;
        reasons.set(REASON_CODES[code], (reasons.get(REASON_CODES[code]) ?? 0) + 1);
      }
    const top = [...reasons.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([r, n]) => `${n}× ${r}`);
    throw new UnprocessableError(
      `no node is eligible for this job (${placement.rejected.length} rejected: ${top.join('; ') || 'no active node'}); see muster jobs plan`,
      'no_eligible_node',
    );
  }
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return placement.chosen.map((c) => byId.get(c.nodeId)!);
}

/** Turns a policy refusal into the answer an operator reads, as for commands. */
function refuseWith<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (!(err instanceof CommandRefused)) throw err;
    const status: Record<string, number> = { operator: 403, action: 403 };
    throw new AppError(
      status[err.code] ?? 400,
      `refused_${err.code}`,
      err.message.replace('the command', 'the job'),
    );
  }
}
