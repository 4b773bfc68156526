import type { KeyObject } from 'node:crypto';
import { type Checkpoint, checkpointBody, signNote, verifierKey } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { BadRequestError, NotFoundError } from '../../errors.js';
import type { Schema } from '../../store/schema.js';
import {
  appendEntries,
  consistencyProof,
  inclusionProof,
  logSize,
  readEntries,
  recentEntries,
  rootAt,
} from './log.js';

export interface LedgerDeps {
  db: Kysely<Schema>;
  clock: Clock;
  /** The checkpoint origin, also the signing key's name. */
  origin: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export const MAX_ENTRIES_PER_PAGE = 1000;

/**
 * The transparency ledger: every decision appended in the transaction that makes it, signed
 * checkpoints over the log, and the proofs anyone can check against them.
 */
export class LedgerService {
  readonly vkey: string;
  /** The newest signed checkpoint this process has seen or made; agents witness it. */
  private latest: string | undefined;

  constructor(private readonly deps: LedgerDeps) {
    this.vkey = verifierKey(deps.origin, deps.publicKey);
  }

  /** The decision seam: each decision becomes the next entry, inside the caller's transaction. */
  recorder(): DecisionRecorder {
    return {
      record: async (trx, decision) => {
        await appendEntries(trx, [{ ...decision, ts: this.deps.clock.now() }]);
      },
    };
  }

  get origin(): string {
    return this.deps.origin;
  }

  size(): Promise<number> {
    return logSize(this.deps.db);
  }

  /**
   * A signed checkpoint covering every entry committed before the call: the newest stored one
   * when nothing was appended since, a new one otherwise. Replicas that sign the same size
   * sign the same text (Ed25519 is deterministic), so whichever insert wins is the same note.
   */
  async checkpoint(): Promise<{ note: string; checkpoint: Checkpoint }> {
    const { db, clock, origin, privateKey, publicKey } = this.deps;
    const size = await logSize(db);
    const latest = await db
      .selectFrom('ledger_checkpoints')
      .select(['size', 'note'])
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst();
    const root = await rootAt(db, size);
    const checkpoint = { origin, size, root };
    if (latest && latest.size === size) {
      this.latest = latest.note;
      return { note: latest.note, checkpoint };
    }
    const note = signNote(checkpointBody(checkpoint), origin, privateKey, publicKey);
    await db
      .insertInto('ledger_checkpoints')
      .values({ size, ts: clock.now(), note })
      .onConflict((oc) => oc.column('size').doNothing())
      .execute();
    this.latest = note;
    return { note, checkpoint };
  }

  /** Entries [start, end) with the stored leaf hash of each; at most MAX_ENTRIES_PER_PAGE. */
  async entries(start: number, end: number | undefined) {
    const { db } = this.deps;
    const size = await logSize(db);
    const stop = Math.min(end ?? start + 100, size, start + MAX_ENTRIES_PER_PAGE);
    if (start > size)
      throw new BadRequestError(`start ${start} is past the end of the log (size ${size})`, 'bad_range');
    const rows = stop > start ? await readEntries(db, start, stop) : [];
    const leaves =
      rows.length > 0
        ? await db
            .selectFrom('ledger_nodes')
            .select(['idx', 'hash'])
            .where('level', '=', 0)
            .where('idx', '>=', start)
            .where('idx', '<', stop)
            .orderBy('idx')
            .execute()
        : [];
    return {
      size,
      entries: rows.map((row, i) => ({
        seq: row.seq,
        entry: row.entry,
        leafHash: Buffer.from(leaves[i]?.hash ?? '', 'hex').toString('base64'),
      })),
    };
  }

  /** The newest checkpoint known here without a store round trip (undefined before the first). */
  latestCheckpoint(): string | undefined {
    return this.latest;
  }

  async inclusion(seq: number, size: number | undefined) {
    const logNow = await logSize(this.deps.db);
    const treeSize = size ?? logNow;
    if (treeSize > logNow)
      throw new NotFoundError(`the log has ${logNow} entries, not ${treeSize}`, 'no_such_size');
    if (seq >= treeSize)
      throw new BadRequestError(`seq ${seq} is not in a tree of size ${treeSize}`, 'bad_range');
    const hashes = await inclusionProof(this.deps.db, seq, treeSize);
    return { seq, size: treeSize, hashes: hashes.map((h) => h.toString('base64')) };
  }

  async consistency(from: number, to: number | undefined) {
    const logNow = await logSize(this.deps.db);
    const target = to ?? logNow;
    if (target > logNow)
      throw new NotFoundError(`the log has ${logNow} entries, not ${target}`, 'no_such_size');
    if (from < 1 || from > target)
      throw new BadRequestError(`no consistency proof from ${from} to ${target}`, 'bad_range');
    const hashes = await consistencyProof(this.deps.db, from, target);
    return { from, to: target, hashes: hashes.map((h) => h.toString('base64')) };
  }

  async decisions(filter: {
    kind?: string;
    subject?: string;
    actor?: string;
    before?: number;
    limit: number;
  }) {
    const rows = await recentEntries(this.deps.db, filter);
    return {
      items: rows.map((r) => JSON.parse(r.entry) as unknown),
      nextBefore: rows.length === filter.limit ? rows.at(-1)!.seq : null,
    };
  }

  /** Signs a checkpoint whenever new entries exist, every interval, until the signal aborts. */
  startCheckpointer(intervalMs: number, signal: AbortSignal, onError: (err: unknown) => void): void {
    void this.checkpoint().catch(onError); // agents get a checkpoint from their first heartbeat
    const tick = async () => {
      if (signal.aborted) return;
      try {
        await this.checkpoint();
      } catch (err) {
        onError(err);
      }
      if (!signal.aborted) setTimeout(tick, intervalMs).unref();
    };
    setTimeout(tick, intervalMs).unref();
  }
}
