import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { NonceStore } from '../../http/signatures.js';
import { MicroBatch } from '../../store/micro-batch.js';
import type { Schema } from '../../store/schema.js';

/** How often expired nonces are removed, at most (by whichever replica gets there first). */
const SWEEP_EVERY_MS = 30_000;

interface Nonce {
  nonce: string;
  serial: string;
  expires_at: number;
}

/** A nonce that was already in the store (or twice in one batch): the request is a replay. */
class SeenBefore extends Error {}

/**
 * Signed-request nonces in the store (migration 0017): the primary key refuses a second use on
 * any replica; a row outlives the window in which its signature could pass the clock check, then
 * goes. Nonces arriving together are inserted in one statement, as heartbeats are written.
 */
export class StoredNonces implements NonceStore {
  private lastSweep = 0;
  private readonly batch = new MicroBatch<Nonce>((items) => this.insert(items), 1000);

  constructor(
    private readonly db: Kysely<Schema>,
    private readonly clock: Clock,
  ) {}

  async consume(nonce: string, serial: string, expiresAt: number): Promise<boolean> {
    try {
      await this.batch.add({ nonce, serial, expires_at: expiresAt });
      return true;
    } catch (err) {
      if (err instanceof SeenBefore) return false;
      throw err;
    }
  }

  private async insert(items: Nonce[]): Promise<Array<Error | undefined>> {
    const now = this.clock.now();
    if (now - this.lastSweep >= SWEEP_EVERY_MS) {
      this.lastSweep = now;
      await this.db.deleteFrom('request_nonces').where('expires_at', '<', now).execute();
    }
    const first = new Map<string, Nonce>();
    for (const item of items) if (!first.has(item.nonce)) first.set(item.nonce, item);
    const inserted = new Set(
      (
        await this.db
          .insertInto('request_nonces')
          .values([...first.values()])
          .onConflict((oc) => oc.column('nonce').doNothing())
          .returning('nonce')
          .execute()
      ).map((row) => row.nonce),
    );
    return items.map((item) =>
      first.get(item.nonce) === item && inserted.has(item.nonce) ? undefined : new SeenBefore(),
    );
  }
}
