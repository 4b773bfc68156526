import { FINAL_TARGET_STATES, type Receipt, receiptSignatureValid, type SignedCommand } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { BadRequestError, NotFoundError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';
import type { EventSink } from '../events/service.js';

const CHUNK = 500;
/** A delivered command whose node never answers is given up this long after it expired. */
const DELIVERED_GRACE_MS = 3_600_000;

export interface CommandTrackerDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
  events: Pick<EventSink, 'append'>;
}

export interface Delivery {
  nodeId: string;
  signed: SignedCommand;
}

/**
 * Where each command stands on each node: pending until a channel carries it, delivered,
 * running once the agent says it started, then whatever its signed receipt says, or expired
 * when it never reached the node in time. Delivery and every receipt are recorded decisions.
 */
export class CommandTracker {
  constructor(private readonly deps: CommandTrackerDeps) {}

  /** Unexpired commands waiting for these nodes, oldest first. */
  async pendingFor(nodeIds: readonly string[]): Promise<Delivery[]> {
    const out: Delivery[] = [];
    const now = this.deps.clock.now();
    for (let i = 0; i < nodeIds.length; i += CHUNK) {
      const rows = await this.deps.db
        .selectFrom('command_targets as t')
        .innerJoin('commands as c', 'c.id', 't.command_id')
        .select(['t.node_id', 'c.signed'])
        .where('t.state', '=', 'pending')
        .where('t.expires_at', '>', now)
        .where('t.node_id', 'in', nodeIds.slice(i, i + CHUNK))
        .orderBy('c.created_at')
        .execute();
      for (const row of rows) out.push({ nodeId: row.node_id, signed: JSON.parse(row.signed) });
    }
    return out;
  }

  /** Marks deliveries made (pending → delivered), one decision per command delivered. */
  async delivered(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    const byCommand = new Map<string, string[]>();
    for (const d of deliveries) {
      const list = byCommand.get(d.signed.command.id) ?? [];
      list.push(d.nodeId);
      byCommand.set(d.signed.command.id, list);
    }
    const now = this.deps.clock.now();
    await this.deps.write(async (trx) => {
      for (const [commandId, nodes] of byCommand) {
        for (let i = 0; i < nodes.length; i += CHUNK)
          await trx
            .updateTable('command_targets')
            .set({ state: 'delivered', updated_at: now })
            .where('command_id', '=', commandId)
            .where('node_id', 'in', nodes.slice(i, i + CHUNK))
            .where('state', '=', 'pending')
            .execute();
        await this.deps.decisions.record(trx, {
          kind: 'command.delivered',
          actor: 'system',
          subject: `command:${commandId}`,
          data: { nodes: nodes.length <= 50 ? nodes : undefined, count: nodes.length },
        });
      }
    });
  }

  /** The agent checked the command and started it. */
  async running(nodeId: string, commandId: string): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.write(async (trx) => {
      const updated = await trx
        .updateTable('command_targets')
        .set({ state: 'running', updated_at: now })
        .where('command_id', '=', commandId)
        .where('node_id', '=', nodeId)
        .where('state', 'in', ['pending', 'delivered'])
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) > 0)
        await this.deps.events.append(trx, {
          kind: 'command.running',
          nodeId,
          actor: `node:${nodeId}`,
          severity: 'info',
          data: { commandId },
        });
    });
  }

  /**
   * Takes a node's signed receipt: checked against the node's own certificate, stored, and
   * recorded. A command already answered keeps its first answer (a replay the agent refused
   * answers again, and must not overwrite what happened).
   */
  async receipt(nodeId: string, receipt: Receipt): Promise<void> {
    if (receipt.nodeId !== nodeId) throw new BadRequestError('the receipt is for another node', 'wrong_node');
    const now = this.deps.clock.now();
    await this.deps.write(async (trx) => {
      const row = await trx
        .selectFrom('command_targets as t')
        .innerJoin('nodes as n', 'n.id', 't.node_id')
        .select(['t.state', 'n.cert_pem', 'n.pending_pem'])
        .where('t.command_id', '=', receipt.commandId)
        .where('t.node_id', '=', nodeId)
        .executeTakeFirst();
      if (!row)
        throw new NotFoundError(`no command ${receipt.commandId} was sent to this node`, 'unknown_command');
      const pems = [row.cert_pem, row.pending_pem].filter((p): p is string => p !== null);
      if (!pems.some((pem) => receiptSignatureValid(receipt, pem)))
        throw new BadRequestError(
          "the receipt's signature does not verify with this node's certificate",
          'bad_signature',
        );
      if ((FINAL_TARGET_STATES as readonly string[]).includes(row.state)) return;
      await trx
        .updateTable('command_targets')
        .set({
          state: receipt.status,
          reason: receipt.reason ?? null,
          receipt: JSON.stringify(receipt),
          updated_at: now,
        })
        .where('command_id', '=', receipt.commandId)
        .where('node_id', '=', nodeId)
        .execute();
      await this.deps.decisions.record(trx, {
        kind: 'command.answered',
        actor: `node:${nodeId}`,
        subject: `node:${nodeId}`,
        data: {
          commandId: receipt.commandId,
          status: receipt.status,
          ...(receipt.reason ? { reason: receipt.reason } : {}),
          exitCode: receipt.exitCode,
          outputSha256: receipt.outputSha256,
          signature: receipt.signature,
        },
      });
    });
  }

  /** Gives up on commands that never reached their node in time; returns how many. */
  async expire(): Promise<number> {
    const now = this.deps.clock.now();
    return this.deps.write(async (trx) => {
      const stale = await trx
        .selectFrom('command_targets')
        .select(['command_id', 'node_id', 'state'])
        .where((eb) =>
          eb.or([
            eb.and([eb('state', '=', 'pending'), eb('expires_at', '<=', now)]),
            eb.and([eb('state', '=', 'delivered'), eb('expires_at', '<=', now - DELIVERED_GRACE_MS)]),
          ]),
        )
        .limit(CHUNK)
        .execute();
      for (const row of stale) {
        const reason =
          row.state === 'pending' ? 'never delivered before the command expired' : 'the node never answered';
        await trx
          .updateTable('command_targets')
          .set({ state: 'expired', reason, updated_at: now })
          .where('command_id', '=', row.command_id)
          .where('node_id', '=', row.node_id)
          .execute();
        await this.deps.decisions.record(trx, {
          kind: 'command.expired',
          actor: 'system',
          subject: `node:${row.node_id}`,
          data: { commandId: row.command_id, reason },
        });
      }
      return stale.length;
    });
  }
}
