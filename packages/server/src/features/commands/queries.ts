import {
  type CommandApprovals,
  type CommandList,
  type CommandTargetView,
  type CommandView,
  type SignedCommand,
  signaturesOf,
  type TargetState,
} from '@muster/proto';
import type { Kysely, Selectable } from 'kysely';
import { NotFoundError } from '../../errors.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { idStartsWith, MAX_PREFIX_CANDIDATES, MIN_ID_PREFIX, onlyMatch } from '../../store/id-prefix.js';
import type { CommandsTable, Schema } from '../../store/schema.js';

/** Commands as operators read them: newest first, with per-state counts and per-node detail. */
export class CommandQueries {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly clock: { now(): number } = { now: Date.now },
  ) {}

  async list(query: { limit: number; cursor?: string }): Promise<CommandList> {
    let q = this.db.selectFrom('commands').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc');
    if (query.cursor) {
      const after = decodeCursor(query.cursor, readCommandPosition);
      q = q.where((eb) =>
        eb.or([
          eb('created_at', '<', after.at),
          eb.and([eb('created_at', '=', after.at), eb('id', '<', after.id)]),
        ]),
      );
    }
    const rows = await q.limit(query.limit + 1).execute();
    const page = rows.slice(0, query.limit);
    const summaries = await this.summaries(page.map((r) => r.id));
    const signers = await this.signers(page.map((r) => r.id));
    const last = page.at(-1);
    const now = this.clock.now();
    return {
      items: page.map((row) => view(row, summaries.get(row.id) ?? {}, signers.get(row.id) ?? [], now)),
      nextCursor: rows.length > query.limit && last ? encodeCursor([Number(last.created_at), last.id]) : null,
    };
  }

  /** A command by its id, or by a prefix of it that only one command's id starts with (as git does). */
  async get(idOrPrefix: string): Promise<CommandView> {
    const row =
      (await this.db.selectFrom('commands').selectAll().where('id', '=', idOrPrefix).executeTakeFirst()) ??
      (await this.byPrefix(idOrPrefix));
    const id = row.id;
    const targets = await this.db
      .selectFrom('command_targets as t')
      .innerJoin('nodes as n', 'n.id', 't.node_id')
      .select(['t.node_id', 'n.name', 't.state', 't.reason', 't.receipt', 't.updated_at'])
      .where('t.command_id', '=', id)
      .orderBy('n.name')
      .execute();
    const summary: Record<string, number> = {};
    const items: CommandTargetView[] = targets.map((t) => {
      summary[t.state] = (summary[t.state] ?? 0) + 1;
      return {
        nodeId: t.node_id,
        name: t.name,
        state: t.state as TargetState,
        reason: t.reason,
        updatedAt: new Date(Number(t.updated_at)).toISOString(),
        receipt: t.receipt ? JSON.parse(t.receipt) : null,
      };
    });
    const signers = (await this.signers([id])).get(id) ?? [];
    return {
      ...view(row, summary, signers, this.clock.now()),
      targets: items,
      signed: JSON.parse(row.signed) as SignedCommand,
    };
  }

  private async byPrefix(prefix: string): Promise<Selectable<CommandsTable>> {
    if (prefix.length < MIN_ID_PREFIX) throw new NotFoundError(`no command ${prefix}`);
    const rows = await this.db
      .selectFrom('commands')
      .selectAll()
      .where(idStartsWith(prefix))
      .orderBy('id')
      .limit(MAX_PREFIX_CANDIDATES + 1)
      .execute();
    return onlyMatch(rows, prefix, 'command');
  }

  /** Who signed each command, in the order they did. */
  private async signers(ids: string[]): Promise<Map<string, Signers>> {
    const out = new Map<string, Signers>();
    if (ids.length === 0) return out;
    const rows = await this.db
      .selectFrom('command_signatures')
      .select(['command_id', 'operator', 'user', 'signed_at'])
      .where('command_id', 'in', ids)
      .orderBy('signed_at')
      .orderBy('operator')
      .execute();
    for (const row of rows)
      out.set(row.command_id, [
        ...(out.get(row.command_id) ?? []),
        { operator: row.operator, user: row.user, signedAt: new Date(Number(row.signed_at)).toISOString() },
      ]);
    return out;
  }

  private async summaries(ids: string[]): Promise<Map<string, Record<string, number>>> {
    const out = new Map<string, Record<string, number>>();
    if (ids.length === 0) return out;
    const rows = await this.db
      .selectFrom('command_targets')
      .select(['command_id', 'state', (eb) => eb.fn.countAll().as('n')])
      .where('command_id', 'in', ids)
      .groupBy(['command_id', 'state'])
      .execute();
    for (const row of rows) {
      const summary = out.get(row.command_id) ?? {};
      summary[row.state] = Number(row.n);
      out.set(row.command_id, summary);
    }
    return out;
  }
}

type Signers = CommandApprovals['signers'];

function view(
  row: Selectable<CommandsTable>,
  summary: Record<string, number>,
  stored: Signers,
  now: number,
): CommandView {
  const signed = JSON.parse(row.signed) as SignedCommand;
  const { command } = signed;
  const required = Number(row.approvals_required);
  // Commands from before dual control have no rows: their signature is in the envelope.
  const signers =
    stored.length > 0
      ? stored
      : signaturesOf(signed).map((s) => ({ operator: s.operator, user: null, signedAt: null }));
  const awaiting = Number(row.signer_count) < required;
  return {
    id: row.id,
    operator: row.operator,
    action: row.action,
    args: command.args,
    target: command.target,
    issuedAt: command.issuedAt,
    expiresAt: command.expiresAt,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    summary,
    state: !awaiting ? 'issued' : Number(row.expires_at) <= now ? 'expired' : 'awaiting_approval',
    approvals: { required, signers },
  };
}

/** A command listing's position, `[at, id]` on the wire (see http/cursor.ts). */
function readCommandPosition(value: unknown): { at: number; id: string } | undefined {
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    Number.isSafeInteger(value[0]) &&
    typeof value[1] === 'string'
  )
    return { at: value[0], id: value[1] };
  return undefined;
}
