import { jobSignaturesOf, type PlacedEntryData, type SignedJob } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { ConflictError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { DialectTraits } from '../../store/dialect.js';
import type { Schema } from '../../store/schema.js';
import type { Signer } from '../commands/signers.js';

/** Replicas tell each other a job has shards waiting for delivery (PostgreSQL NOTIFY). */
export const JOBS_CHANNEL = 'muster_jobs';
const INSERT_CHUNK = 500;

export interface NewJob {
  signed: SignedJob;
  signers: Signer[];
  required: number;
  actor: string;
  now: number;
  /** The `job.placed` data; absent while the job awaits approval. */
  placement: PlacedEntryData | undefined;
}

/**
 * Stores a job and, once it has its approvals, its placement: the `job.placed` entry, the job
 * row pointing at it and one shard row per chosen node, all in one transaction, so no shard
 * exists that the ledger does not show.
 */
export async function storeJob(
  deps: { write: Store['write']; traits: DialectTraits; decisions: DecisionRecorder },
  item: NewJob,
): Promise<void> {
  const { job } = item.signed;
  try {
    await deps.write(async (trx) => {
      const seen = await trx
        .selectFrom('jobs')
        .select('id')
        .where((eb) => eb.or([eb('id', '=', job.id), eb('nonce', '=', job.nonce)]))
        .executeTakeFirst();
      if (seen) throw replay(job.id);
      await trx
        .insertInto('jobs')
        .values({
          id: job.id,
          nonce: job.nonce,
          operator: job.operator,
          action: job.action,
          signed: JSON.stringify(item.signed),
          state: item.placement ? 'placed' : 'awaiting_approval',
          approvals_required: item.required,
          signer_count: item.signers.length,
          placed_seq: null,
          issued_at: Date.parse(job.issuedAt),
          expires_at: Date.parse(job.expiresAt),
          created_at: item.now,
          stopped_at: null,
        })
        .execute();
      if (item.placement) await recordPlacement(trx, deps.decisions, item.actor, item.placement, item.now);
      else
        await deps.decisions.record(trx, {
          kind: 'job.submitted',
          actor: item.actor,
          subject: `job:${job.id}`,
          data: {
            operator: job.operator,
            action: job.action,
            approvals: {
              required: item.required,
              signers: jobSignaturesOf(item.signed).map((s) => ({
                operator: s.operator,
                signature: s.signature,
              })),
            },
          },
        });
    });
  } catch (err) {
    if (deps.traits.isUniqueViolation(err)) throw replay(job.id);
    throw err;
  }
}

/** The `job.placed` entry, the job row pointing at it, and a pending shard per chosen node. */
export async function recordPlacement(
  trx: Kysely<Schema>,
  decisions: DecisionRecorder,
  actor: string,
  data: PlacedEntryData,
  now: number,
): Promise<void> {
  await decisions.record(trx, { kind: 'job.placed', actor, subject: `job:${data.job}`, data });
  const entry = await trx
    .selectFrom('ledger_entries')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .where('subject', '=', `job:${data.job}`)
    .where('kind', '=', 'job.placed')
    .executeTakeFirstOrThrow();
  await trx
    .updateTable('jobs')
    .set({ state: 'placed', placed_seq: Number(entry.seq) })
    .where('id', '=', data.job)
    .execute();
  const rows = data.shards.map((nodeId, shard) => ({
    job_id: data.job,
    shard,
    node_id: nodeId,
    state: 'pending',
    attempt: 1,
    reason: null,
    receipt: null,
    updated_at: now,
  }));
  for (let i = 0; i < rows.length; i += INSERT_CHUNK)
    await trx
      .insertInto('job_shards')
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
}

function replay(id: string): ConflictError {
  return new ConflictError(`job ${id} (or its nonce) was submitted before; a replay is refused`, 'replay');
}

/**
 * Stops a job: nothing new is placed or delivered; shards not yet answered are `stopped` (a node
 * already running one finishes it and its receipt is kept). Ledgered as `job.stopped`.
 */
export async function stopJob(
  deps: { write: Store['write']; decisions: DecisionRecorder },
  id: string,
  actor: string,
  now: number,
): Promise<boolean> {
  return deps.write(async (trx) => {
    const row = await trx.selectFrom('jobs').select(['state']).where('id', '=', id).executeTakeFirst();
    if (!row || row.state === 'stopped') return false;
    const stopped = await trx
      .updateTable('job_shards')
      .set({ state: 'stopped', reason: `stopped by ${actor}`, updated_at: now })
      .where('job_id', '=', id)
      .where('state', 'in', ['pending', 'delivered'])
      .executeTakeFirst();
    await trx.updateTable('jobs').set({ state: 'stopped', stopped_at: now }).where('id', '=', id).execute();
    await deps.decisions.record(trx, {
      kind: 'job.stopped',
      actor,
      subject: `job:${id}`,
      data: { was: row.state, shardsStopped: Number(stopped.numUpdatedRows) },
    });
    return true;
  });
}
