import { createHash } from 'node:crypto';
import {
  authorize,
  type CommandAccepted,
  CommandRefused,
  checkTiming,
  commandSignatureValid,
  findOperator,
  type SignedCommand,
  type SignedPolicy,
  type TargetCandidate,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { AppError, BadRequestError, ConflictError, ForbiddenError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { DialectTraits } from '../../store/dialect.js';
import type { Notifications } from '../../store/notifications.js';
import type { Schema } from '../../store/schema.js';
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
   * `checkTargets` sees the nodes the command selects before anything is stored, and may
   * refuse them (a role narrowed to some nodes).
   */
  async issue(
    signed: SignedCommand,
    actor: string,
    checkTargets?: (targets: TargetCandidate[]) => Promise<void>,
  ): Promise<CommandAccepted> {
    const { db, write, clock, decisions, traits } = this.deps;
    const { command } = signed;
    const policy = await this.deps.policy.current();
    if (!policy)
      throw new ConflictError(
        'no command policy is in force yet: sign one and run "muster policy push"',
        'no_policy',
      );
    const operator = findOperator(policy.policy, command.operator);
    if (!operator)
      throw new ForbiddenError(`operator ${command.operator} is not in the policy`, 'unknown_operator');
    if (!commandSignatureValid(command, signed.signature, operator.publicKey))
      throw new BadRequestError(
        `the command's signature does not verify with operator ${command.operator}'s key`,
        'bad_signature',
      );
    const now = clock.now();
    refuseWith(() => checkTiming(command, now, this.deps.skewAllowanceMs));
    const targets = await resolveTargets(db, command.target);
    await checkTargets?.(targets);
    for (const profile of new Set(targets.map((t) => t.profile)))
      refuseWith(() => authorize(policy.policy, command, profile));
    const ids = targets.map((t) => t.id);
    const expiresAt = Date.parse(command.expiresAt);
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
          })
          .execute();
        for (let i = 0; i < ids.length; i += INSERT_CHUNK)
          await trx
            .insertInto('command_targets')
            .values(
              ids.slice(i, i + INSERT_CHUNK).map((nodeId) => ({
                command_id: command.id,
                node_id: nodeId,
                state: 'pending',
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
          data: {
            operator: command.operator,
            action: command.action,
            args: command.args,
            target: command.target,
            // The operator's signature: anyone can check the ledger holds what the operator signed.
            signature: signed.signature,
            commandSha256: sha256(JSON.stringify(command)),
            targetCount: ids.length,
            ...(ids.length <= LISTED_TARGETS
              ? { targets: ids }
              : { targetsSha256: sha256([...ids].sort().join('\n')) }),
          },
        });
        await this.deps.notifications?.notify(trx, COMMANDS_CHANNEL);
      });
    } catch (err) {
      if (traits.isUniqueViolation(err)) throw replay(command.id);
      throw err;
    }
    this.deps.onIssued?.(signed, ids);
    return { id: command.id, targets: targets.map((t) => ({ nodeId: t.id, name: t.name })) };
  }
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
