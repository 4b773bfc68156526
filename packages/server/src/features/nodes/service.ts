import type { NodeFacets, NodeList, NodeStatus, NodeView } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import type { LiveConnections } from '../../http/connections.js';
import type { NodeIdentity, RefusedSerial } from '../../identity.js';
import type { Store } from '../../store/db.js';
import type { Schema } from '../../store/schema.js';
import { NodeCertificates } from './certificates.js';
import { NodeIdentities } from './identity.js';
import { NodeLifecycle } from './lifecycle.js';
import type { Thresholds } from './status.js';
import { NodeViews } from './views.js';

export type { NodeIdentity, RefusedSerial } from '../../identity.js';
export { DEFAULT_CLOCK_SKEW_ALLOWANCE_MS } from './views.js';

export interface NodeServiceDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
  connections: Pick<LiveConnections, 'cut'>;
  /** The disk, memory and load limits for a profile (`--thresholds`); the defaults when absent. */
  thresholds?: (profile: string) => Thresholds;
  /** The interval a node's silence is measured against (adaptive: see heartbeats/pacer.ts). */
  heartbeatIntervalMs: () => number;
  /** How far a node's clock may be off before it shows a `clock skew` reason. */
  clockSkewAllowanceMs?: number;
  /** After a decommission is committed (the status watcher counts it at once). */
  onDecommissioned?: (nodeId: string) => void;
}

export interface NodeQuery {
  status?: NodeStatus;
  label?: { key: string; value: string };
  profile?: string;
  limit: number;
  cursor?: string;
  /** Only the nodes this says the asker may see (a role narrowed to some nodes). */
  visible?: (node: NodeFacets) => boolean;
}

/**
 * Nodes: identity checks (identity.ts), certificate promotion and reuse records
 * (certificates.ts), listing with computed status (views.ts), rotation and decommission
 * (lifecycle.ts), behind one face so the routes and features that use it need not know the seams.
 */
export class NodeService {
  private readonly identities: NodeIdentities;
  private readonly certificates: NodeCertificates;
  private readonly nodes: NodeViews;
  private readonly lifecycle: NodeLifecycle;

  constructor(deps: NodeServiceDeps) {
    this.identities = new NodeIdentities(deps);
    this.certificates = new NodeCertificates(deps);
    this.nodes = new NodeViews(deps);
    this.lifecycle = new NodeLifecycle(deps, this.nodes);
  }

  /**
   * Maps a presented certificate serial to its node, or undefined when the serial is not the
   * node's current one, was revoked, expired, or the node was decommissioned.
   */
  identityBySerial(serial: string): Promise<NodeIdentity | undefined> {
    return this.identities.identityBySerial(serial);
  }

  /** The first use of a renewed certificate makes it current (see certificates.ts). */
  promote(nodeId: string, serial: string): Promise<void> {
    return this.certificates.promote(nodeId, serial);
  }

  /** Looks at a serial the identity check refused; a superseded one is a security record. */
  noteRefusedSerial(serial: string): Promise<RefusedSerial> {
    return this.certificates.noteRefusedSerial(serial);
  }

  /** Asks a node to renew onto a fresh key at its next contact (`muster nodes rotate`). */
  requestRotation(idOrName: string, actor: string): Promise<NodeView> {
    return this.lifecycle.requestRotation(idOrName, actor);
  }

  list(query: NodeQuery): Promise<NodeList> {
    return this.nodes.list(query);
  }

  /** Active nodes by id, as the list shows them (status and reasons computed now). */
  views(ids: readonly string[]): Promise<NodeView[]> {
    return this.nodes.views(ids);
  }

  /** A node by id or by the name of an active node (the newest one holding it otherwise). */
  get(idOrName: string): Promise<NodeView> {
    return this.nodes.get(idOrName);
  }

  /** Revokes a node's identity, cuts its live connections and records the decision. */
  decommission(idOrName: string, actor: string): Promise<void> {
    return this.lifecycle.decommission(idOrName, actor);
  }
}
