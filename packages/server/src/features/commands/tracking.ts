import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { FINAL_TARGET_STATES, type Receipt, receiptSignatureValid, type SignedCommand } from '@muster/proto';
import { type Kysely, sql } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { BadRequestError, NotFoundError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import { MicroBatch } from '../../store/micro-batch.js';
import type { Schema } from '../../store/schema.js';
import type { EventSink } from '../events/service.js';

const CHUNK = 500;
/** Rows per UPDATE … FROM (VALUES …): five parameters each, well inside both stores' limits. */
const VALUES_CHUNK = 500;
/** Node ids listed in a ledger entry or event; beyond, only the count. */
const LISTED = 50;
/** A delivered command whose node never answers is given up this long after it expired. */
const DELIVERED_GRACE_MS = 3_600_000;

/** Why a target expired, by the state it was left in. */
const EXPIRY_REASONS: Record<string, string> = {
  pending: 'never delivered before the command expired',
  awaiting_approval: 'not approved by enough operators before the command expired',
};

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
  private readonly receipts = new MicroBatch((items: Array<{ nodeId: string; receipt: Receipt }>) =>
    this.answer(items),
  );
  private readonly starts = new MicroBatch((items: Array<{ nodeId: string; commandId: string }>) =>
    this.markRunning(items),
  );
  private readonly keys = new Map<string, KeyObject>();

  constructor(private readonly deps: CommandTrackerDeps) {}

  /** Unexpired commands waiting for these nodes, oldest first. */
  async pendingFor(nodeIds: readonly string[]): Promise<Delivery[]> {
    const now = this.deps.clock.now();
    const waiting: Array<{ node_id: string; command_id: string }> = [];
    for (let i = 0; i < nodeIds.length; i += CHUNK)
      waiting.push(
        ...(await this.deps.db
          .selectFrom('command_targets')
          .select(['node_id', 'command_id'])
          .where('state', '=', 'pending')
          .where('expires_at', '>', now)
          .where('node_id', 'in', nodeIds.slice(i, i + CHUNK))
          .execute()),
      );
    if (waiting.length === 0) return [];
    // Each command is read and parsed once, however many nodes wait for it.
    const ids = [...new Set(waiting.map((w) => w.command_id))];
    const commands = new Map<string, { at: number; signed: SignedCommand }>();
    for (let i = 0; i < ids.length; i += CHUNK)
      for (const row of await this.deps.db
        .selectFrom('commands')
        .select(['id', 'signed', 'created_at'])
        .where('id', 'in', ids.slice(i, i + CHUNK))
        .execute())
        commands.set(row.id, { at: Number(row.created_at), signed: JSON.parse(row.signed) as SignedCommand });
    return waiting
      .map((w) => ({
        nodeId: w.node_id,
        at: commands.get(w.command_id)!.at,
        signed: commands.get(w.command_id)!.signed,
      }))
      .sort((a, b) => a.at - b.at)
      .map(({ nodeId, signed }) => ({ nodeId, signed }));
  }

  /**
   * Marks deliveries made (pending → delivered), one decision per command, naming only the
   * nodes whose row this call moved: a delivery another replica (or an earlier run here)
   * already recorded is not recorded again.
   */
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
        const moved: string[] = [];
        for (let i = 0; i < nodes.length; i += CHUNK) {
          const rows = await trx
            .updateTable('command_targets')
            .set({ state: 'delivered', updated_at: now })
            .where('command_id', '=', commandId)
            .where('node_id', 'in', nodes.slice(i, i + CHUNK))
            .where('state', '=', 'pending')
            .returning('node_id')
            .execute();
          for (const row of rows) moved.push(row.node_id);
        }
        if (moved.length === 0) continue;
        await this.deps.decisions.record(trx, {
          kind: 'command.delivered',
          actor: 'system',
          subject: `command:${commandId}`,
          data: { nodes: moved.length <= LISTED ? moved : undefined, count: moved.length },
        });
      }
    });
  }

  /** The agent checked the command and started it. */
  running(nodeId: string, commandId: string): Promise<void> {
    return this.starts.add({ nodeId, commandId });
  }

  /**
   * Takes a node's signed receipt: checked against the node's own certificate, stored, and
   * recorded. A command already answered keeps its first answer (a replay the agent refused
   * answers again, and must not overwrite what happened). Receipts arriving together are
   * checked together and written in one transaction.
   */
  receipt(nodeId: string, receipt: Receipt): Promise<void> {
    return this.receipts.add({ nodeId, receipt });
  }

  /** Resolves once every receipt and start handed in so far is written. */
  async idle(): Promise<void> {
    await Promise.all([this.receipts.idle(), this.starts.idle()]);
  }

  private async markRunning(items: Array<{ nodeId: string; commandId: string }>): Promise<undefined[]> {
    const now = this.deps.clock.now();
    await this.deps.write(async (trx) => {
      const started = new Map<string, string[]>();
      for (let i = 0; i < items.length; i += VALUES_CHUNK) {
        const rows = items.slice(i, i + VALUES_CHUNK).map((x) => sql`(${x.commandId}, ${x.nodeId})`);
        const { rows: updated } = await sql<{ cid: string; nid: string }>`
          update command_targets set state = 'running', updated_at = ${sql.lit(now)}
          from (select column1 as cid, column2 as nid from (values ${sql.join(rows)}) as v) as b
          where command_targets.command_id = b.cid and command_targets.node_id = b.nid
            and command_targets.state in ('pending', 'delivered')
          returning command_targets.command_id as cid, command_targets.node_id as nid`.execute(trx);
        for (const row of updated) started.set(row.cid, [...(started.get(row.cid) ?? []), row.nid]);
      }
      for (const [commandId, nodes] of started)
        await this.deps.events.append(trx, {
          kind: 'command.running',
          nodeId: nodes.length === 1 ? nodes[0]! : null,
          actor: nodes.length === 1 ? `node:${nodes[0]}` : 'system',
          severity: 'info',
          data: { commandId, count: nodes.length, ...(nodes.length <= LISTED ? { nodes } : {}) },
        });
    });
    return items.map(() => undefined);
  }

  private async answer(
    items: Array<{ nodeId: string; receipt: Receipt }>,
  ): Promise<Array<Error | undefined>> {
    const outcomes: Array<Error | undefined> = items.map(({ nodeId, receipt }) =>
      receipt.nodeId === nodeId
        ? undefined
        : new BadRequestError('the receipt is for another node', 'wrong_node'),
    );
    const rows = await this.targetsOf(items.filter((_, i) => !outcomes[i]).map((x) => x.receipt));
    const accepted: Receipt[] = [];
    const taken = new Set<string>();
    items.forEach(({ receipt }, i) => {
      if (outcomes[i]) return;
      const key = `${receipt.commandId} ${receipt.nodeId}`;
      const row = rows.get(key);
      if (!row) {
        outcomes[i] = new NotFoundError(
          `no command ${receipt.commandId} was sent to this node`,
          'unknown_command',
        );
        return;
      }
      if (!row.pems.some((pem) => receiptSignatureValid(receipt, this.keyOf(pem)))) {
        outcomes[i] = new BadRequestError(
          "the receipt's signature does not verify with this node's certificate",
          'bad_signature',
        );
        return;
      }
      // Answered already (or twice in this batch): the first answer stands.
      if (row.final || taken.has(key)) return;
      taken.add(key);
      accepted.push(receipt);
    });
    if (accepted.length > 0) await this.store(accepted);
    return outcomes;
  }

  /** The targets these receipts answer, with the certificates their nodes may have signed with. */
  private async targetsOf(receipts: Receipt[]): Promise<Map<string, { final: boolean; pems: string[] }>> {
    const byCommand = new Map<string, string[]>();
    for (const r of receipts) byCommand.set(r.commandId, [...(byCommand.get(r.commandId) ?? []), r.nodeId]);
    const found = new Map<string, { final: boolean; pems: string[] }>();
    for (const [commandId, nodes] of byCommand)
      for (let i = 0; i < nodes.length; i += CHUNK) {
        const rows = await this.deps.db
          .selectFrom('command_targets as t')
          .innerJoin('nodes as n', 'n.id', 't.node_id')
          .select(['t.node_id', 't.state', 'n.cert_pem', 'n.pending_pem'])
          .where('t.command_id', '=', commandId)
          .where('t.node_id', 'in', nodes.slice(i, i + CHUNK))
          .execute();
        for (const row of rows)
          found.set(`${commandId} ${row.node_id}`, {
            final: (FINAL_TARGET_STATES as readonly string[]).includes(row.state),
            pems: [row.cert_pem, row.pending_pem].filter((p): p is string => p !== null),
          });
      }
    return found;
  }

  /** Writes answers in one transaction: a conditional update each, one decision per command. */
  private async store(receipts: Receipt[]): Promise<void> {
    const now = this.deps.clock.now();
    const byKey = new Map(receipts.map((r) => [`${r.commandId} ${r.nodeId}`, r]));
    await this.deps.write(async (trx) => {
      const answered = new Map<string, Receipt[]>();
      for (let i = 0; i < receipts.length; i += VALUES_CHUNK) {
        const rows = receipts
          .slice(i, i + VALUES_CHUNK)
          .map(
            (r) => sql`(${r.commandId}, ${r.nodeId}, ${r.status}, ${r.reason ?? null}, ${JSON.stringify(r)})`,
          );
        const { rows: updated } = await sql<{ cid: string; nid: string }>`
          update command_targets
          set state = b.state, reason = b.reason, receipt = b.receipt, updated_at = ${sql.lit(now)}
          from (select column1 as cid, column2 as nid, column3 as state, column4 as reason, column5 as receipt
                from (values ${sql.join(rows)}) as v) as b
          where command_targets.command_id = b.cid and command_targets.node_id = b.nid
            and command_targets.state not in (${sql.join(FINAL_TARGET_STATES.map((x) => sql.lit(x)))})
          returning command_targets.command_id as cid, command_targets.node_id as nid`.execute(trx);
        for (const row of updated) {
          const receipt = byKey.get(`${row.cid} ${row.nid}`)!;
          answered.set(row.cid, [...(answered.get(row.cid) ?? []), receipt]);
        }
      }
      for (const [commandId, list] of answered)
        await this.deps.decisions.record(trx, {
          kind: 'command.answered',
          actor: list.length === 1 ? `node:${list[0]!.nodeId}` : 'system',
          subject: `command:${commandId}`,
          data: {
            commandId,
            count: list.length,
            // The ledger commits to each receipt exactly: its hash covers the node's signature.
            answers: list.map((r) => ({
              nodeId: r.nodeId,
              status: r.status,
              exitCode: r.exitCode,
              ...(r.reason ? { reason: r.reason } : {}),
              receiptSha256: createHash('sha256').update(JSON.stringify(r)).digest('hex'),
            })),
          },
        });
    });
  }

  /** Node public keys by certificate, parsed once: checking a receipt is then one verify. */
  private keyOf(pem: string): KeyObject {
    let key = this.keys.get(pem);
    if (!key) {
      if (this.keys.size > 50_000) this.keys.clear();
      key = new X509Certificate(pem).publicKey;
      this.keys.set(pem, key);
    }
    return key;
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
            eb.and([eb('state', 'in', ['pending', 'awaiting_approval']), eb('expires_at', '<=', now)]),
            eb.and([eb('state', '=', 'delivered'), eb('expires_at', '<=', now - DELIVERED_GRACE_MS)]),
          ]),
        )
        .limit(CHUNK)
        .execute();
      for (const row of stale) {
        const reason = EXPIRY_REASONS[row.state] ?? 'the node never answered';
        // Only if nothing answered in between (another replica may have stored a receipt).
        const updated = await trx
          .updateTable('command_targets')
          .set({ state: 'expired', reason, updated_at: now })
          .where('command_id', '=', row.command_id)
          .where('node_id', '=', row.node_id)
          .where('state', '=', row.state)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) continue;
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
