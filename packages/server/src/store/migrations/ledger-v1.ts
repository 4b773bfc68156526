import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';

/*
 * The ledger's v1 entry shape and RFC 6962 hashing, copied from the ledger feature's log.ts and
 * @muster/proto (jcs.ts, merkle.ts) as they were at 0.1.0, and frozen. A migration that appends
 * ledger entries must hash them as the release that wrote the log did; if it called the live
 * code, a later change to hashing or to the entry shape would silently rewrite what an old
 * database gets when it is migrated, and its ledger would no longer verify. Never edit this file
 * once released; a migration that needs other hashing gets a new helper beside it.
 */

/** The ledger tables as they were when 0002_ledger made them. */
export interface LedgerTablesV1 {
  ledger_head: { id: number; size: number };
  ledger_entries: { seq: number; ts: number; kind: string; subject: string; entry: string };
  ledger_nodes: { level: number; idx: number; hash: string };
}

/** One decision to append: `{v: 1, seq, ts, kind, actor, subject, data}` once hashed. */
export interface NewEntryV1 {
  ts: number;
  kind: string;
  actor: string;
  subject: string;
  data: Record<string, unknown>;
}

/** RFC 8785 canonical JSON, as 0.1.0 wrote it. */
export function canonicalJsonV1(value: unknown): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no NaN or Infinity');
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map((item) => canonicalJsonV1(item)).join(',')}]`;
      const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined);
      keys.sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJsonV1((value as Record<string, unknown>)[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
}

/** SHA-256(0x00 ‖ leaf). */
function leafHashV1(leaf: string): Buffer {
  return createHash('sha256').update(Uint8Array.of(0)).update(Buffer.from(leaf, 'utf8')).digest();
}

/** SHA-256(0x01 ‖ left ‖ right). */
function nodeHashV1(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(Uint8Array.of(1)).update(left).update(right).digest();
}

/**
 * Appends entries to the log in the store, as 0.1.0's `appendEntries` did: the head row moves
 * first, each leaf is stored with every complete subtree it finishes.
 */
export async function appendEntriesV1(store: Kysely<unknown>, items: readonly NewEntryV1[]): Promise<void> {
  if (items.length === 0) return;
  const db = store as Kysely<LedgerTablesV1>;
  const head = await db
    .updateTable('ledger_head')
    .set((eb) => ({ size: eb('size', '+', items.length) }))
    .where('id', '=', 1)
    .returning('size')
    .executeTakeFirstOrThrow();
  const first = Number(head.size) - items.length;
  const entries: LedgerTablesV1['ledger_entries'][] = [];
  const nodes: LedgerTablesV1['ledger_nodes'][] = [];
  const made = new Map<string, Buffer>();
  for (const [i, item] of items.entries()) {
    const seq = first + i;
    const text = canonicalJsonV1({
      v: 1,
      seq,
      ts: new Date(item.ts).toISOString(),
      kind: item.kind,
      actor: item.actor,
      subject: item.subject,
      data: item.data,
    });
    let hash = leafHashV1(text);
    entries.push({ seq, ts: item.ts, kind: item.kind, subject: item.subject, entry: text });
    nodes.push({ level: 0, idx: seq, hash: hash.toString('hex') });
    made.set(`0:${seq}`, hash);
    // A right child completes its parent: hash upwards while we are the right child.
    for (let level = 0, idx = seq; idx % 2 === 1; level++, idx = (idx - 1) / 2) {
      const left = made.get(`${level}:${idx - 1}`) ?? (await storedNodeV1(db, level, idx - 1));
      hash = nodeHashV1(left, hash);
      const parent = (idx - 1) / 2;
      nodes.push({ level: level + 1, idx: parent, hash: hash.toString('hex') });
      made.set(`${level + 1}:${parent}`, hash);
    }
  }
  await db.insertInto('ledger_entries').values(entries).execute();
  for (let i = 0; i < nodes.length; i += 300) {
    await db
      .insertInto('ledger_nodes')
      .values(nodes.slice(i, i + 300))
      .execute();
  }
}

async function storedNodeV1(db: Kysely<LedgerTablesV1>, level: number, idx: number): Promise<Buffer> {
  const row = await db
    .selectFrom('ledger_nodes')
    .select('hash')
    .where('level', '=', level)
    .where('idx', '=', idx)
    .executeTakeFirst();
  if (!row) throw new Error(`ledger node ${level}/${idx} is missing`);
  return Buffer.from(row.hash, 'hex');
}
