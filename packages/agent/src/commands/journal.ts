import { appendFile, mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@muster/host';
import type { Receipt } from '@muster/proto';

/** One command this node accepted: kept until well after it expires, so its nonce is never run twice. */
export interface JournalEntry {
  id: string;
  nonce: string;
  expiresAt: number;
  startedAt: string;
  /** Set once it finished (or was found interrupted); cleared of nothing: the receipt is evidence. */
  receipt?: Receipt;
  /** The server stored the receipt. */
  acked?: boolean;
}

type Line =
  | { t: 'start'; id: string; nonce: string; expiresAt: number; startedAt: string }
  | { t: 'done'; id: string; receipt: Receipt }
  | { t: 'acked'; id: string };

/** Entries stay this long past their command's expiry, to absorb clock steps on the host. */
const KEEP_AFTER_EXPIRY_MS = 3_600_000;

/**
 * The agent's command journal: an append-only file, each line synced to disk before the
 * agent acts on it. A command is written as started before it runs, so after a crash or a
 * restart it is answered as interrupted and never run again.
 */
export class CommandJournal {
  private readonly byId = new Map<string, JournalEntry>();
  private readonly nonces = new Map<string, string>();
  private readonly path: string;
  private writes: Promise<void> = Promise.resolve();

  private constructor(private readonly dir: string) {
    this.path = join(dir, 'journal.jsonl');
  }

  /** Opens the journal under `dataDir`, dropping entries long expired and acknowledged. */
  static async open(dataDir: string, now: number): Promise<CommandJournal> {
    const journal = new CommandJournal(join(dataDir, 'commands'));
    await mkdir(journal.dir, { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await readFile(journal.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const raw of text.split('\n')) {
      if (!raw) continue;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        continue; // a line cut short by a crash: its command never started
      }
      journal.apply(line);
    }
    for (const entry of [...journal.byId.values()])
      if (entry.acked && entry.expiresAt + KEEP_AFTER_EXPIRY_MS < now) journal.forget(entry);
    await journal.compact();
    return journal;
  }

  /** The command with this id or nonce, if this node ever accepted it. */
  seen(id: string, nonce: string): JournalEntry | undefined {
    const byNonce = this.nonces.get(nonce);
    return this.byId.get(id) ?? (byNonce ? this.byId.get(byNonce) : undefined);
  }

  /** Started before any receipt: what a restart finds interrupted. */
  unfinished(): JournalEntry[] {
    return [...this.byId.values()].filter((e) => !e.receipt);
  }

  /** Finished but not yet stored by the server. */
  unacked(): JournalEntry[] {
    return [...this.byId.values()].filter((e) => e.receipt && !e.acked);
  }

  start(entry: { id: string; nonce: string; expiresAt: number; startedAt: string }): Promise<void> {
    return this.write({ t: 'start', ...entry });
  }

  done(id: string, receipt: Receipt): Promise<void> {
    return this.write({ t: 'done', id, receipt });
  }

  acked(id: string): Promise<void> {
    const entry = this.byId.get(id);
    if (!entry?.receipt || entry.acked) return Promise.resolve();
    return this.write({ t: 'acked', id });
  }

  private apply(line: Line): void {
    if (line.t === 'start') {
      this.byId.set(line.id, {
        id: line.id,
        nonce: line.nonce,
        expiresAt: line.expiresAt,
        startedAt: line.startedAt,
      });
      this.nonces.set(line.nonce, line.id);
      return;
    }
    const entry = this.byId.get(line.id);
    if (!entry) return;
    if (line.t === 'done') entry.receipt = line.receipt;
    else entry.acked = true;
  }

  private forget(entry: JournalEntry): void {
    this.byId.delete(entry.id);
    this.nonces.delete(entry.nonce);
  }

  /** Appends and syncs one line; the in-memory view changes only once it is on disk. */
  private write(line: Line): Promise<void> {
    const next = this.writes.then(async () => {
      await appendFile(this.path, `${JSON.stringify(line)}\n`, { mode: 0o600 });
      const handle = await open(this.path, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      this.apply(line);
    });
    this.writes = next.catch(() => {});
    return next;
  }

  private async compact(): Promise<void> {
    const lines: Line[] = [];
    for (const e of this.byId.values()) {
      lines.push({ t: 'start', id: e.id, nonce: e.nonce, expiresAt: e.expiresAt, startedAt: e.startedAt });
      if (e.receipt) lines.push({ t: 'done', id: e.id, receipt: e.receipt });
      if (e.acked) lines.push({ t: 'acked', id: e.id });
    }
    await writeFileAtomic(this.path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''), 0o600);
  }
}
