import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePrivateDir, type Log, writeFileAtomic } from '@muster/host';
import {
  type Checkpoint,
  NoteError,
  openCheckpoint,
  parseVerifierKey,
  type Verifier,
  verifyConsistency,
} from '@muster/proto';

/** A check an agent reports in its heartbeat. */
export interface WitnessCheck {
  name: 'ledger-witness';
  ok: boolean;
  detail?: string;
}

/**
 * The agent as a witness of the ledger: it keeps the last checkpoint it verified, checks that
 * each newer one extends it (an RFC 6962 consistency proof, fetched from the server), and when
 * one does not, keeps both signed checkpoints as evidence and reports it until an operator
 * looks. A server that rewrote history cannot hide it from the agents that saw the old log.
 */
export class Witness {
  private readonly verifier: Verifier;
  private readonly heldPath: string;
  private readonly evidenceDir: string;

  constructor(
    dataDir: string,
    ledgerKey: string,
    private readonly fetchConsistency: (from: number, to: number) => Promise<string[]>,
    private readonly log: Log,
  ) {
    this.verifier = parseVerifierKey(ledgerKey);
    this.heldPath = join(dataDir, 'checkpoint');
    this.evidenceDir = join(dataDir, 'evidence');
  }

  /** Looks at a checkpoint the server offered; never throws. */
  async observe(offered: string): Promise<void> {
    let next: Checkpoint;
    try {
      next = openCheckpoint(offered, this.verifier);
    } catch (err) {
      if (err instanceof NoteError)
        return this.raise(offered, undefined, `the checkpoint does not verify: ${err.message}`);
      throw err;
    }
    const heldNote = await readFile(this.heldPath, 'utf8').catch(() => undefined);
    if (!heldNote) return this.hold(offered);
    const held = openCheckpoint(heldNote, this.verifier);
    if (next.size < held.size)
      return this.raise(offered, heldNote, `the log shrank from ${held.size} to ${next.size} entries`);
    if (next.size === held.size) {
      if (!next.root.equals(held.root))
        return this.raise(offered, heldNote, `two different roots for size ${held.size}`);
      return;
    }
    if (held.size === 0) return this.hold(offered);
    let proof: string[];
    try {
      proof = await this.fetchConsistency(held.size, next.size);
    } catch (err) {
      // The agent stopping aborts the fetch: nothing to say then.
      if ((err as Error).name !== 'AbortError') {
        this.log.warn('could not fetch a ledger consistency proof; will try again', {
          error: (err as Error).message,
        });
      }
      return;
    }
    const consistent = verifyConsistency(
      held.size,
      next.size,
      proof.map((h) => Buffer.from(h, 'base64')),
      held.root,
      next.root,
    );
    if (!consistent) {
      return this.raise(
        offered,
        heldNote,
        `checkpoint ${next.size} does not extend the checkpoint ${held.size} this agent holds`,
      );
    }
    await this.hold(offered);
  }

  /** The checkpoint this agent holds, verified; undefined before its first. */
  async held(): Promise<Checkpoint | undefined> {
    const note = await readFile(this.heldPath, 'utf8').catch(() => undefined);
    return note ? openCheckpoint(note, this.verifier) : undefined;
  }

  /** The heartbeat check: failing while any evidence is kept. */
  async check(): Promise<WitnessCheck> {
    const files = await readdir(this.evidenceDir).catch(() => [] as string[]);
    if (files.length === 0) return { name: 'ledger-witness', ok: true };
    return {
      name: 'ledger-witness',
      ok: false,
      detail: `the ledger served a checkpoint inconsistent with one this node holds; evidence in ${this.evidenceDir}`,
    };
  }

  private async hold(note: string): Promise<void> {
    await writeFileAtomic(this.heldPath, note, 0o644);
  }

  private async raise(offered: string, held: string | undefined, reason: string): Promise<void> {
    await ensurePrivateDir(this.evidenceDir);
    const file = join(this.evidenceDir, `ledger-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFileAtomic(
      file,
      `${JSON.stringify({ reason, held: held ?? null, offered }, null, 2)}\n`,
      0o644,
    );
    this.log.error('security: the ledger is not what this node witnessed before', { reason, evidence: file });
  }
}
