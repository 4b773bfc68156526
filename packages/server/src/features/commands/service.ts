import { createHash } from 'node:crypto';
import {
  approvalsRequired,
  authorize,
  type Command,
  type CommandAccepted,
  CommandRefused,
  type CommandSignature,
  checkTiming,
  commandSignatureValid,
  findOperator,
  type Policy,
  type SignedCommand,
  type SignedPolicy,
  signaturesOf,
  type TargetCandidate,
  withSignatures,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { AppError, BadRequestError, ConflictError, ForbiddenError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { DialectTraits } from '../../store/dialect.js';
import type { Notifications } from '../../store/notifications.js';
import type { Schema } from '../../store/schema.js';
import { checkSignature, refuseRepeat, type Signer, signerRefusal, usersOf } from './signers.js';
import { resolveTargets } from './targets.js';

/** Replicas tell each other a command is waiting for delivery (PostgreSQL NOTIFY). */
export const COMMANDS_CHANNEL = 'muster_commands';

/** A ledger entry lists the target nodes up to this many, and their digest beyond. */
const LISTED_TARGETS = 50;
const INSERT_CHUNK = 500;

export interface CommandServiceDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  traits: DialectTraits;
  clock: Clock;
  decisions: DecisionRecorder;
  policy: { current(): Promise<SignedPolicy | null> };
  skewAllowanceMs: number;
  notifications?: Notifications;
  /** Called after a command is committed, to deliver it over this replica's channels. */
  onIssued?(signed: SignedCommand, nodeIds: readonly string[]): void;
}

/**
 * Accepting signed commands: the server checks the operator's signature, the policy and the
 * timing before it records anything, then stores the command and one row per target node. It
 * never signs or alters a command: it relays what the operator signed.
 */
export class CommandService {
  constructor(private readonly deps: CommandServiceDeps) {}

  /**
   * `gate` sees the nodes the command selects before anything is stored, and may refuse them (a
   * role narrowed to some nodes); it refuses a signer whose user may not run the command too.
   */
  async issue(signed: SignedCommand, actor: string, gate?: Gate): Promise<CommandAccepted> {
    const { db, clock } = this.deps;
    const { command } = signed;
    const policy = await this.deps.policy.current();
    if (!policy)
      throw new ConflictError(
        'no command policy is in force yet: sign one and run "muster policy push"',
        'no_policy',
      );
    const signatures = signaturesOf(signed);
    const own = signatures.find((s) => s.operator === command.operator);
    if (!own)
      throw new BadRequestError(
        `the command carries no signature by its operator ${command.operator}`,
        'bad_signature',
      );
    const operator = findOperator(policy.policy, command.operator);
    if (!operator)
      throw new ForbiddenError(`operator ${command.operator} is not in the policy`, 'unknown_operator');
    if (!commandSignatureValid(command, own.signature, operator.publicKey))
      throw new BadRequestError(
        `the command's signature does not verify with operator ${command.operator}'s key`,
        'bad_signature',
      );
    const now = clock.now();
    refuseWith(() => checkTiming(command, now, this.deps.skewAllowanceMs));
    const targets = await resolveTargets(db, command.target);
    await gate?.targets(targets);
    const profiles = [...new Set(targets.map((t) => t.profile))];
    for (const profile of profiles) refuseWith(() => authorize(policy.policy, command, profile));
    // The operator's own signature first: it issued the command; any others approve it.
    const signers = await this.signers(
      policy.policy,
      command,
      [own, ...signatures.filter((s) => s !== own)],
      targets,
      gate,
    );
    const required = Math.max(...profiles.map((p) => approvalsRequired(policy.policy, command.action, p)));
    const stored = withSignatures(command, signers.slice(0, Math.max(required, 1)));
    const kept = signaturesOf(stored).length;
    const awaiting = kept < required;
    await this.store(stored, signers.slice(0, kept), required, targets, actor, now);
    if (!awaiting)
      this.deps.onIssued?.(
        stored,
        targets.map((t) => t.id),
      );
    return {
      id: command.id,
      targets: targets.map((t) => ({ nodeId: t.id, name: t.name })),
      state: awaiting ? 'awaiting_approval' : 'issued',
      approvals: {
        required,
        signers: signers.slice(0, kept).map((s) => ({
          operator: s.operator,
          user: s.user,
          signedAt: new Date(now).toISOString(),
        })),
      },
    };
  }

  /** Checks every signature a command came with, and that each signer's user may run it. */
  private async signers(
    policy: Policy,
    command: Command,
    signatures: CommandSignature[],
    targets: TargetCandidate[],
    gate: Gate | undefined,
  ): Promise<Signer[]> {
    const users = await usersOf(
      this.deps.db,
      signatures.map((s) => s.operator),
    );
    const signers: Signer[] = [];
    for (const [i, signature] of signatures.entries()) {
      const signer = {
        ...checkSignature(policy, command, signature, targets),
        user: users.get(signature.operator) ?? null,
      };
      refuseRepeat(signer, signers, (m) => new BadRequestError(m, 'duplicate_signer'));
      const refusal = await signerRefusal(this.deps.db, signer, i === 0 ? 'create' : 'approve', targets);
      if (refusal) await (gate ? gate.deny(refusal) : Promise.reject(new ForbiddenError(refusal)));
      signers.push(signer);
    }
    return signers;
  }

  private async store(
    signed: SignedCommand,
    signers: Signer[],
    required: number,
    targets: TargetCandidate[],
    actor: string,
    now: number,
  ): Promise<void> {
    const { write, decisions, traits } = this.deps;
    const { command } = signed;
    const ids = targets.map((t) => t.id);
    const expiresAt = Date.parse(command.expiresAt);
    const awaiting = signers.length < required;
    try {
      await write(async (trx) => {
        const seen = await trx
          .selectFrom('commands')
          .select('id')
          .where((eb) => eb.or([eb('id', '=', command.id), eb('nonce', '=', command.nonce)]))
          .executeTakeFirst();
        if (seen) throw replay(command.id);
        await trx
          .insertInto('commands')
          .values({
            id: command.id,
            nonce: command.nonce,
            operator: command.operator,
            action: command.action,
            signed: JSON.stringify(signed),
            issued_at: Date.parse(command.issuedAt),
            expires_at: expiresAt,
            created_at: now,
            approvals_required: required,
            signer_count: signers.length,
          })
          .execute();
        await trx
          .insertInto('command_signatures')
          .values(
            signers.map((s) => ({
              command_id: command.id,
              public_key: s.publicKey,
              operator: s.operator,
              user: s.user,
              signature: s.signature,
              signed_at: now,
              actor,
            })),
          )
          .execute();
        for (let i = 0; i < ids.length; i += INSERT_CHUNK)
          await trx
            .insertInto('command_targets')
            .values(
              ids.slice(i, i + INSERT_CHUNK).map((nodeId) => ({
                command_id: command.id,
                node_id: nodeId,
                state: awaiting ? 'awaiting_approval' : 'pending',
                reason: null,
                receipt: null,
                expires_at: expiresAt,
                updated_at: now,
              })),
            )
            .execute();
        await decisions.record(trx, {
          kind: 'command.issued',
          actor,
          subject: `command:${command.id}`,
          data: issuedData(command, signers, required, ids),
        });
        if (!awaiting) await this.deps.notifications?.notify(trx, COMMANDS_CHANNEL);
      });
    } catch (err) {
      if (traits.isUniqueViolation(err)) throw replay(command.id);
      throw err;
    }
  }
}

/** What the route lets the service see of the request: its scope, and how it refuses. */
export interface Gate {
  /** Refuses targets outside the sender's scope. */
  targets(targets: TargetCandidate[]): Promise<void>;
  /** Refuses as the access guard does (403 forbidden, an `access.denied` event). */
  deny(detail: string): Promise<never>;
}

/** What the ledger keeps of an issued command: enough to check the operators really signed it. */
function issuedData(command: Command, signers: Signer[], required: number, ids: string[]) {
  return {
    operator: command.operator,
    action: command.action,
    args: command.args,
    target: command.target,
    // The operator's signature: anyone can check the ledger holds what the operator signed.
    signature: signers[0]!.signature,
    ...(required > 1 || signers.length > 1
      ? {
          approvals: {
            required,
            signers: signers.map((s) => ({ operator: s.operator, user: s.user, signature: s.signature })),
          },
        }
      : {}),
    commandSha256: sha256(JSON.stringify(command)),
    targetCount: ids.length,
    ...(ids.length <= LISTED_TARGETS
      ? { targets: ids }
      : { targetsSha256: sha256([...ids].sort().join('\n')) }),
  };
}

function replay(id: string): ConflictError {
  return new ConflictError(`command ${id} (or its nonce) was issued before; a replay is refused`, 'replay');
}

/** Turns a policy refusal into the answer an operator reads. */
function refuseWith<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (!(err instanceof CommandRefused)) throw err;
    const status: Record<string, number> = { operator: 403, action: 403 };
    throw new AppError(status[err.code] ?? 400, `refused_${err.code}`, err.message);
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
