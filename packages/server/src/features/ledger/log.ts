import {
  canonicalJson,
  completeSubtrees,
  consistencyRanges,
  foldSubtrees,
  inclusionRanges,
  type LeafRange,
  leafHash,
  nodeHash,
  type SubtreeId,
} from '@muster/proto';
import { type Kysely, sql } from 'kysely';
import type { Schema } from '../../store/schema.js';

/** One ledger entry as it is hashed: `{v, seq, ts, kind, actor, subject, data}`. */
export interface LedgerEntry {
  v: 1;
  seq: number;
  ts: string;
  kind: string;
  actor: string;
  subject: string;
  data: Record<string, unknown>;
}

export type NewEntry = Omit<LedgerEntry, 'v' | 'seq' | 'ts'> & { ts: number };

/**
 * The RFC 6962 log in the store. Appends happen inside the caller's transaction; the head row
 * (`ledger_head`) is what serializes writers, in the database, so replicas share one log.
 * Every complete subtree's hash is stored when its last leaf arrives, so any root or proof is
 * a fold of at most 2·log2(n) stored hashes.
 */
export async function appendEntries(trx: Kysely<Schema>, items: readonly NewEntry[]): Promise<number[]> {
  if (items.length === 0) return [];
  const head = await trx
    .updateTable('ledger_head')
    .set((eb) => ({ size: eb('size', '+', items.length) }))
    .where('id', '=', 1)
    .returning('size')
    .executeTakeFirstOrThrow();
  const first = head.size - items.length;
  const entries: Schema['ledger_entries'][] = [];
  const nodes: Schema['ledger_nodes'][] = [];
  const made = new Map<string, Buffer>();
  for (const [i, item] of items.entries()) {
    const seq = first + i;
    const text = canonicalJson({
      v: 1,
      seq,
      ts: new Date(item.ts).toISOString(),
      kind: item.kind,
      actor: item.actor,
      subject: item.subject,
      data: item.data,
    } satisfies LedgerEntry);
    let hash = leafHash(text);
    entries.push({ seq, ts: item.ts, kind: item.kind, subject: item.subject, entry: text });
    nodes.push({ level: 0, idx: seq, hash: hash.toString('hex') });
    made.set(`0:${seq}`, hash);
    // A right child completes its parent: hash upwards while we are the right child.
    for (let level = 0, idx = seq; idx % 2 === 1; level++, idx = (idx - 1) / 2) {
      const left = made.get(`${level}:${idx - 1}`) ?? (await storedNode(trx, level, idx - 1));
      hash = nodeHash(left, hash);
      const parent = (idx - 1) / 2;
      nodes.push({ level: level + 1, idx: parent, hash: hash.toString('hex') });
      made.set(`${level + 1}:${parent}`, hash);
    }
  }
  await trx.insertInto('ledger_entries').values(entries).execute();
  for (let i = 0; i < nodes.length; i += 300) {
    await trx
      .insertInto('ledger_nodes')
      .values(nodes.slice(i, i + 300))
      .execute();
  }
  return entries.map((e) => e.seq);
}

async function storedNode(db: Kysely<Schema>, level: number, idx: number): Promise<Buffer> {
  const row = await db
    .selectFrom('ledger_nodes')
    .select('hash')
    .where('level', '=', level)
    .where('idx', '=', idx)
    .executeTakeFirst();
  if (!row) throw new Error(`ledger node ${level}/${idx} is missing`);
  return Buffer.from(row.hash, 'hex');
}

/** The size of the log as committed. */
export async function logSize(db: Kysely<Schema>): Promise<number> {
  const row = await db.selectFrom('ledger_head').select('size').where('id', '=', 1).executeTakeFirstOrThrow();
  return row.size;
}

/** Reads the stored hashes of these complete subtrees, in one query. */
async function subtreeHashes(db: Kysely<Schema>, ids: readonly SubtreeId[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('ledger_nodes')
    .select(['level', 'idx', 'hash'])
    .where((eb) =>
      eb.or(ids.map(({ level, index }) => eb.and([eb('level', '=', level), eb('idx', '=', index)]))),
    )
    .execute();
  for (const row of rows) out.set(`${row.level}:${row.idx}`, Buffer.from(row.hash, 'hex'));
  for (const { level, index } of ids) {
    if (!out.has(`${level}:${index}`)) throw new Error(`ledger node ${level}/${index} is missing`);
  }
  return out;
}

/** The hashes of these leaf ranges (each MTH(D[start:end])), from stored subtrees only. */
export async function rangeHashes(db: Kysely<Schema>, ranges: readonly LeafRange[]): Promise<Buffer[]> {
  const plans = ranges.map((r) => completeSubtrees(r));
  const stored = await subtreeHashes(db, plans.flat());
  return plans.map((plan) => foldSubtrees(plan.map(({ level, index }) => stored.get(`${level}:${index}`)!)));
}

export async function rootAt(db: Kysely<Schema>, size: number): Promise<Buffer> {
  const [root] = await rangeHashes(db, [{ start: 0, end: size }]);
  return root!;
}

export async function inclusionProof(db: Kysely<Schema>, seq: number, size: number): Promise<Buffer[]> {
  return rangeHashes(db, inclusionRanges(seq, size));
}

export async function consistencyProof(db: Kysely<Schema>, from: number, to: number): Promise<Buffer[]> {
  return rangeHashes(db, consistencyRanges(from, to));
}

/** Entries [start, end) as stored: the exact canonical JSON that was hashed. */
export async function readEntries(db: Kysely<Schema>, start: number, end: number) {
  return db
    .selectFrom('ledger_entries')
    .select(['seq', 'entry'])
    .where('seq', '>=', start)
    .where('seq', '<', end)
    .orderBy('seq')
    .execute();
}

/** The newest decisions first, filtered by kind and subject: the operators' view of the ledger. */
export async function recentEntries(
  db: Kysely<Schema>,
  filter: { kind?: string; subject?: string; actor?: string; before?: number; limit: number },
) {
  let q = db.selectFrom('ledger_entries').select(['seq', 'entry']).orderBy('seq', 'desc').limit(filter.limit);
  if (filter.kind) q = q.where('kind', '=', filter.kind);
  if (filter.actor) {
    // Canonical JSON sorts keys, so an entry's text starts with its actor: a prefix says it all.
    const prefix = `{"actor":${JSON.stringify(filter.actor)},`;
    q = q.where(sql<string>`substr(${sql.ref('entry')}, 1, ${sql.lit(prefix.length)})`, '=', prefix);
  }
  if (filter.subject) q = q.where('subject', '=', filter.subject);
  if (filter.before !== undefined) q = q.where('seq', '<', filter.before);
  return q.execute();
}
