import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DamagedBackupError } from './format.js';

/*
 * The dialect-neutral form of a store: JSON lines, a table's header (an object naming the
 * table and its columns) followed by its rows (arrays, in the header's column order). Values
 * are strings, finite numbers and null, which is every column type the schema uses (text,
 * integer, bigint, double precision). Tables come parents first, so rows can be loaded in order
 * with foreign keys checked.
 */

export type RowsItem =
  | { kind: 'table'; table: string; columns: string[] }
  | { kind: 'row'; values: Array<string | number | null> };

/** Kysely's bookkeeping: the migrator writes it afresh when the schema is made on restore. */
export const MIGRATION_TABLES = new Set(['kysely_migration', 'kysely_migration_lock']);

/** Tables ordered so that every table comes after those its foreign keys point at. */
export function parentsFirst(tables: readonly string[], edges: ReadonlyArray<[string, string]>): string[] {
  const ordered: string[] = [];
  const placed = new Set<string>();
  const visit = (table: string, path: Set<string>) => {
    if (placed.has(table) || path.has(table)) return;
    path.add(table);
    for (const [child, parent] of edges) if (child === table && parent !== table) visit(parent, path);
    placed.add(table);
    ordered.push(table);
  };
  for (const table of [...tables].sort()) visit(table, new Set());
  return ordered.filter((t) => tables.includes(t));
}

/** A value as the rows form carries it; anything else is refused rather than silently changed. */
export function rowValue(value: unknown, table: string, column: string): string | number | null {
  if (value === null || typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint' && value >= Number.MIN_SAFE_INTEGER && value <= Number.MAX_SAFE_INTEGER)
    return Number(value);
  throw new Error(`${table}.${column} holds a value a backup cannot carry (${typeof value})`);
}

/** Writes rows as JSON lines, waiting for the disk when it falls behind. */
export class RowsWriter {
  private readonly out: WriteStream;

  constructor(path: string) {
    this.out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
  }

  async write(item: RowsItem): Promise<void> {
    const line = item.kind === 'table' ? { table: item.table, columns: item.columns } : item.values;
    if (!this.out.write(`${JSON.stringify(line)}\n`)) await once(this.out, 'drain');
  }

  /** Many rows in one write: a page of a cursor. */
  async writeRows(rows: ReadonlyArray<ReadonlyArray<string | number | null>>): Promise<void> {
    if (rows.length === 0) return;
    const text = rows.map((values) => JSON.stringify(values)).join('\n');
    if (!this.out.write(`${text}\n`)) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    this.out.end();
    await once(this.out, 'close');
  }
}

/** Reads a rows file back; the backup's checksums already vouch for it, this checks its shape. */
export async function* readRows(path: string): AsyncGenerator<RowsItem> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  let columns = -1;
  for await (const line of lines) {
    const parsed = JSON.parse(line) as unknown;
    if (Array.isArray(parsed)) {
      if (parsed.length !== columns) throw new DamagedBackupError('its store has a row of the wrong width');
      yield { kind: 'row', values: parsed as Array<string | number | null> };
    } else {
      const header = parsed as { table?: unknown; columns?: unknown };
      if (typeof header.table !== 'string' || !Array.isArray(header.columns))
        throw new DamagedBackupError('its store has a malformed table header');
      columns = header.columns.length;
      yield { kind: 'table', table: header.table, columns: header.columns as string[] };
    }
  }
}
