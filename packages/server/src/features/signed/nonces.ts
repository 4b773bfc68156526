import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { NonceStore } from '../../http/signatures.js';
import type { Schema } from '../../store/schema.js';

/** How often expired nonces are removed, at most (by whichever replica gets there first). */
const SWEEP_EVERY_MS = 30_000;

/**
 * Signed-request nonces in the store (migration 0017): the primary key refuses a second use on
 * any replica; a row outlives the window in which its signature could pass the clock check, then goes.
 */
export class StoredNonces implements NonceStore {
  private lastSweep = 0;

  constructor(
    private readonly db: Kysely<Schema>,
    private readonly clock: Clock,
  ) {}

  async consume(nonce: string, serial: string, expiresAt: number): Promise<boolean> {
    const now = this.clock.now();
    if (now - this.lastSweep >= SWEEP_EVERY_MS) {
      this.lastSweep = now;
      await this.db.deleteFrom('request_nonces').where('expires_at', '<', now).execute();
    }
    const result = await this.db
      .insertInto('request_nonces')
      .values({ nonce, serial, expires_at: expiresAt })
      .onConflict((oc) => oc.column('nonce').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }
}
