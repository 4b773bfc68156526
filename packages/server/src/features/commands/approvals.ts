import {
  type CommandAccepted,
  type CommandSignature,
  formatDuration,
  type SignedCommand,
  signaturesOf,
  type TargetCandidate,
  withSignatures,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import { ConflictError, NotFoundError } from '../../errors.js';
import type { Schema } from '../../store/schema.js';
import { COMMANDS_CHANNEL, type CommandServiceDeps, type Gate } from './service.js';
import { checkSignature, refuseRepeat, type Signer, signerRefusal, usersOf } from './signers.js';

/**
 * Dual control: a command whose action needs N operators waits as `awaiting_approval` until
 * N distinct operators (by key, and by user) have signed it; then it goes out with every
 * signature, and each agent counts them again against its own policy.
 */
export class ApprovalService {
  constructor(
    private readonly deps: Omit<CommandServiceDeps, 'skewAllowanceMs' | 'traits'> & {
      traits: Pick<CommandServiceDeps['traits'], 'isUniqueViolation'>;
    },
  ) {}

  /** Adds one operator's signature to a command awaiting approval. */
  async approve(
    id: string,
    signature: CommandSignature,
    actor: string,
    gate: Gate,
  ): Promise<CommandAccepted> {
    const { db, clock } = this.deps;
    const row = await db.selectFrom('commands').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`no command ${id}`);
    const { command } = JSON.parse(row.signed) as SignedCommand;
    const targets = await targetsOf(db, id);
    await gate.targets(targets);
    const required = Number(row.approvals_required);
    const have = Number(row.signer_count);
    if (have >= required)
      throw new ConflictError(
        `command ${id} is not awaiting approval: it has the ${required} signature(s) its action needs`,
        'not_awaiting',
      );
    const now = clock.now();
    if (Number(row.expires_at) <= now)
      throw new ConflictError(
        `command ${id} expired ${formatDuration(now - Number(row.expires_at))} ago while awaiting approval (${have} of ${required} signatures); it can no longer be approved`,
        'expired',
      );
    const policy = await this.deps.policy.current();
    if (!policy) throw new ConflictError('no command policy is in force', 'no_policy');
    const users = await usersOf(db, [signature.operator]);
    const signer: Signer = {
      ...checkSignature(policy.policy, command, signature, targets),
      user: users.get(signature.operator) ?? null,
    };
    const refuse = (m: string) => new ConflictError(m, 'already_signed');
    refuseRepeat(signer, await signersOf(db, id), refuse);
    const refusal = await signerRefusal(db, signer, 'approve', targets);
    if (refusal) await gate.deny(refusal);
    let signed: SignedCommand | undefined;
    let signers: Signer[] = [];
    try {
      ({ signed, signers } = await this.record(id, signer, actor, now, refuse));
    } catch (err) {
      // Another replica took the same key's approval a moment earlier.
      if (this.deps.traits.isUniqueViolation(err))
        throw refuse(`operator ${signer.operator}'s key has signed already`);
      throw err;
    }
    const complete = signers.length >= required;
    if (complete)
      this.deps.onIssued?.(
        signed,
        targets.map((t) => t.id),
      );
    return {
      id,
      targets: targets.map((t) => ({ nodeId: t.id, name: t.name })),
      state: complete ? 'issued' : 'awaiting_approval',
      approvals: { required, signers: signers.map(view) },
    };
  }

  /**
   * One transaction: count the signature (the update locks the command's row, so approvals on
   * several replicas are counted one after another), store it, and at the last one needed let
   * the command go to its targets.
   */
  private async record(
    id: string,
    signer: Signer,
    actor: string,
    now: number,
    refuse: (m: string) => ConflictError,
  ): Promise<{ signed: SignedCommand; signers: Signer[] }> {
    return this.deps.write(async (trx) => {
      const counted = await trx
        .updateTable('commands')
        .set((eb) => ({ signer_count: eb('signer_count', '+', 1) }))
        .where('id', '=', id)
        .whereRef('signer_count', '<', 'approvals_required')
        .where('expires_at', '>', now)
        .returning(['signer_count', 'approvals_required', 'signed'])
        .executeTakeFirst();
      if (!counted) throw new ConflictError(`command ${id} is no longer awaiting approval`, 'not_awaiting');
      refuseRepeat(signer, await signersOf(trx, id), refuse);
      await trx
        .insertInto('command_signatures')
        .values({
          command_id: id,
          public_key: signer.publicKey,
          operator: signer.operator,
          user: signer.user,
          signature: signer.signature,
          signed_at: now,
          actor,
        })
        .execute();
      const signers = await signersOf(trx, id);
      const { command } = JSON.parse(counted.signed) as SignedCommand;
      const signed = withSignatures(command, signers);
      await trx
        .updateTable('commands')
        .set({ signed: JSON.stringify(signed) })
        .where('id', '=', id)
        .execute();
      const complete = Number(counted.signer_count) >= Number(counted.approvals_required);
      if (complete)
        await trx
          .updateTable('command_targets')
          .set({ state: 'pending', updated_at: now })
          .where('command_id', '=', id)
          .where('state', '=', 'awaiting_approval')
          .execute();
      await this.deps.decisions.record(trx, {
        kind: 'command.approved',
        actor,
        subject: `command:${id}`,
        data: {
          operator: signer.operator,
          user: signer.user,
          publicKey: signer.publicKey,
          // Anyone can check the approval is the operator's own, over the command's bytes.
          signature: signer.signature,
          signatures: signaturesOf(signed).length,
          required: Number(counted.approvals_required),
          complete,
        },
      });
      if (complete) await this.deps.notifications?.notify(trx, COMMANDS_CHANNEL);
      return { signed, signers };
    });
  }
}

function view(s: Signer & { signedAt?: number }) {
  return {
    operator: s.operator,
    user: s.user,
    signedAt: s.signedAt === undefined ? null : new Date(s.signedAt).toISOString(),
  };
}

/** The signatures a command has gathered, the issuing operator's first. */
export async function signersOf(
  db: Kysely<Schema>,
  id: string,
): Promise<Array<Signer & { signedAt: number }>> {
  const rows = await db
    .selectFrom('command_signatures')
    .selectAll()
    .where('command_id', '=', id)
    .orderBy('signed_at')
    .orderBy('operator')
    .execute();
  return rows.map((r) => ({
    operator: r.operator,
    signature: r.signature,
    publicKey: r.public_key,
    user: r.user,
    signedAt: Number(r.signed_at),
  }));
}

async function targetsOf(db: Kysely<Schema>, id: string): Promise<TargetCandidate[]> {
  const rows = await db
    .selectFrom('command_targets as t')
    .innerJoin('nodes as n', 'n.id', 't.node_id')
    .select(['n.id', 'n.name', 'n.profile', 'n.labels'])
    .where('t.command_id', '=', id)
    .orderBy('n.name')
    .execute();
  return rows.map((r) => ({ id: r.id, name: r.name, profile: r.profile, labels: JSON.parse(r.labels) }));
}
