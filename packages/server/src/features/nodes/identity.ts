import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { NodeIdentity } from '../../identity.js';
import { BatchedLookup } from '../../store/batched-lookup.js';
import type { NodesTable, Schema } from '../../store/schema.js';

/** Maps presented certificate serials to the nodes they identify. */
export class NodeIdentities {
  constructor(private readonly deps: { db: Kysely<Schema>; clock: Clock }) {}

  /**
   * Maps a presented certificate serial to its node, or undefined when the serial is not the
   * node's current one, was revoked, expired, or the node was decommissioned.
   */
  async identityBySerial(serial: string): Promise<NodeIdentity | undefined> {
    const row = await this.identities.get(serial);
    if (!row) return undefined;
    const pending = row.pending_serial === serial;
    const notAfter = pending ? row.pending_not_after! : row.cert_not_after;
    if (notAfter <= this.deps.clock.now()) return undefined;
    return { id: row.id, name: row.name, serial, pending, rekeyRequested: row.rekey_requested_at !== null };
  }

  /** Identity checks of concurrent requests share one query; a node answers to its current and its pending serial. */
  private readonly identities = new BatchedLookup<
    string,
    Pick<
      NodesTable,
      | 'id'
      | 'name'
      | 'cert_serial'
      | 'cert_not_after'
      | 'pending_serial'
      | 'pending_not_after'
      | 'rekey_requested_at'
    >
  >(async (serials) => {
    const rows = await this.deps.db
      .selectFrom('nodes')
      .select([
        'id',
        'name',
        'cert_serial',
        'cert_not_after',
        'pending_serial',
        'pending_not_after',
        'rekey_requested_at',
      ])
      .where((eb) => eb.or([eb('cert_serial', 'in', serials), eb('pending_serial', 'in', serials)]))
      .where('decommissioned_at', 'is', null)
      .execute();
    const found = new Map<string, (typeof rows)[number]>();
    for (const row of rows) {
      found.set(row.cert_serial, row);
      if (row.pending_serial !== null) found.set(row.pending_serial, row);
    }
    return found;
  });
}
