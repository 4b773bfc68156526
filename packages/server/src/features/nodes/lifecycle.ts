import type { NodeView } from '@muster/proto';
import { ConflictError } from '../../errors.js';
import type { NodeServiceDeps } from './service.js';
import type { NodeViews } from './views.js';

/** What an operator does to a node's standing: ask it to rotate its key, decommission it. */
export class NodeLifecycle {
  constructor(
    private readonly deps: Pick<
      NodeServiceDeps,
      'write' | 'clock' | 'decisions' | 'connections' | 'onDecommissioned'
    >,
    private readonly nodes: Pick<NodeViews, 'find' | 'get'>,
  ) {}

  /** Asks a node to renew onto a fresh key at its next contact (`muster nodes rotate`). */
  async requestRotation(idOrName: string, actor: string): Promise<NodeView> {
    const { write, clock, decisions } = this.deps;
    const node = await this.nodes.find(idOrName);
    if (node.decommissioned_at !== null)
      throw new ConflictError(
        `node ${node.name} is decommissioned; it has no identity to rotate`,
        'decommissioned',
      );
    const now = clock.now();
    await write(async (trx) => {
      await trx.updateTable('nodes').set({ rekey_requested_at: now }).where('id', '=', node.id).execute();
      await decisions.record(trx, {
        kind: 'node.rotation_requested',
        actor,
        subject: `node:${node.id}`,
        data: { name: node.name, serial: node.cert_serial },
      });
    });
    return this.nodes.get(node.id);
  }

  /** Revokes a node's identity, cuts its live connections and records the decision. */
  async decommission(idOrName: string, actor: string): Promise<void> {
    const { write, clock, decisions, connections } = this.deps;
    const node = await this.nodes.find(idOrName);
    if (node.decommissioned_at !== null) return;
    const now = clock.now();
    await write(async (trx) => {
      await trx.updateTable('nodes').set({ decommissioned_at: now }).where('id', '=', node.id).execute();
      await trx
        .updateTable('certificates')
        .set({ revoked_at: now })
        .where('node_id', '=', node.id)
        .where('revoked_at', 'is', null)
        .execute();
      await decisions.record(trx, {
        kind: 'node.decommissioned',
        actor,
        subject: `node:${node.id}`,
        data: { name: node.name, serial: node.cert_serial },
      });
    });
    connections.cut(node.id);
    this.deps.onDecommissioned?.(node.id);
  }
}
