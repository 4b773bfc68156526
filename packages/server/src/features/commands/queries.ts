import type { CommandList, CommandTargetView, CommandView, SignedCommand, TargetState } from '@muster/proto';
import { type Kysely, type Selectable, sql } from 'kysely';
import { ConflictError, NotFoundError } from '../../errors.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import type { CommandsTable, Schema } from '../../store/schema.js';

/** A shorter prefix would match half the history; it is taken as a whole id. */
const MIN_PREFIX = 4;
/** How many ids an ambiguous prefix names. */
const MAX_CANDIDATES = 5;

/** Commands as operators read them: newest first, with per-state counts and per-node detail. */
export class CommandQueries {
  constructor(private readonly db: Kysely<Schema>) {}

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
    const last = page.at(-1);
    return {
      items: page.map((row) => view(row, summaries.get(row.id) ?? {})),
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
    return { ...view(row, summary), targets: items, signed: JSON.parse(row.signed) as SignedCommand };
  }

  private async byPrefix(prefix: string): Promise<Selectable<CommandsTable>> {
    if (prefix.length < MIN_PREFIX) throw new NotFoundError(`no command ${prefix}`);
    const pattern = `${prefix.replace(/[\\%_]/g, '\\$&')}%`;
    const rows = await this.db
      .selectFrom('commands')
      .selectAll()
      // LIKE can use an index; substr makes it exact, as SQLite's LIKE ignores case.
      .where(sql<boolean>`id like ${pattern} escape '\\'`)
      .where(sql<boolean>`substr(id, 1, ${prefix.length}) = ${prefix}`)
      .orderBy('id')
      .limit(MAX_CANDIDATES + 1)
      .execute();
    if (rows.length === 0) throw new NotFoundError(`no command ${prefix}`);
    if (rows.length > 1) {
      const more = rows.length > MAX_CANDIDATES ? ', …' : '';
      throw new ConflictError(
        `"${prefix}" is the start of several command ids: ${rows
          .slice(0, MAX_CANDIDATES)
          .map((r) => r.id)
          .join(', ')}${more}; give more of it`,
        'ambiguous_id',
      );
    }
    return rows[0]!;
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

function view(row: Selectable<CommandsTable>, summary: Record<string, number>): CommandView {
  const { command } = JSON.parse(row.signed) as SignedCommand;
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
