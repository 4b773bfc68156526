import type { Facts, Heartbeat, Labels, NodeList, NodeStatus, NodeView } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { BadRequestError, NotFoundError } from '../../errors.js';
import type { LiveConnections } from '../../http/connections.js';
import { BatchedLookup } from '../../store/batched-lookup.js';
import type { Store } from '../../store/db.js';
import type { NodesTable, Schema } from '../../store/schema.js';
import { assessNode } from './status.js';

export interface NodeServiceDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
  connections: Pick<LiveConnections, 'cut'>;
  heartbeatIntervalMs: number;
}

export interface NodeQuery {
  status?: NodeStatus;
  label?: { key: string; value: string };
  profile?: string;
  limit: number;
  cursor?: string;
}

/** The identity a verified client certificate maps to. */
export interface NodeIdentity {
  id: string;
  name: string;
  serial: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PAGE = 500;

/** Nodes: listing with computed status, detail, decommission, and identity checks. */
export class NodeService {
  constructor(private readonly deps: NodeServiceDeps) {}

  /**
   * Maps a presented certificate serial to its node, or undefined when the serial is not the
   * node's current one, was revoked, expired, or the node was decommissioned.
   */
  async identityBySerial(serial: string): Promise<NodeIdentity | undefined> {
    const row = await this.identities.get(serial);
    if (!row || row.cert_not_after <= this.deps.clock.now()) return undefined;
    return { id: row.id, name: row.name, serial: row.cert_serial };
  }

  /** Identity checks of concurrent requests share one query. */
  private readonly identities = new BatchedLookup<
    string,
    Pick<NodesTable, 'id' | 'name' | 'cert_serial' | 'cert_not_after'>
  >(async (serials) => {
    const rows = await this.deps.db
      .selectFrom('nodes')
      .select(['id', 'name', 'cert_serial', 'cert_not_after'])
      .where('cert_serial', 'in', serials)
      .where('decommissioned_at', 'is', null)
      .execute();
    return new Map(rows.map((row) => [row.cert_serial, row]));
  });

  async list(query: NodeQuery): Promise<NodeList> {
    const items: NodeView[] = [];
    let after = query.cursor ? decodeCursor(query.cursor) : undefined;
    const now = this.deps.clock.now();
    // Status is computed, not stored, so filter page by page until the answer is full.
    for (;;) {
      let select = this.deps.db.selectFrom('nodes').selectAll().orderBy('name').orderBy('id').limit(PAGE);
      if (query.profile) select = select.where('profile', '=', query.profile);
      if (query.status !== 'decommissioned') select = select.where('decommissioned_at', 'is', null);
      else select = select.where('decommissioned_at', 'is not', null);
      if (after) {
        const { name, id } = after;
        select = select.where((eb) =>
          eb.or([eb('name', '>', name), eb.and([eb('name', '=', name), eb('id', '>', id)])]),
        );
      }
      const rows = await select.execute();
      for (const row of rows) {
        after = { name: row.name, id: row.id };
        const view = this.view(row, now, false);
        if (query.status && view.status !== query.status) continue;
        if (query.label && view.labels[query.label.key] !== query.label.value) continue;
        items.push(view);
        if (items.length === query.limit) return { items, nextCursor: encodeCursor(after) };
      }
      if (rows.length < PAGE) return { items, nextCursor: null };
    }
  }

  /** A node by id or by the name of an active node (the newest one holding it otherwise). */
  async get(idOrName: string): Promise<NodeView> {
    return this.view(await this.find(idOrName), this.deps.clock.now(), true);
  }

  /** Revokes a node's identity, cuts its live connections and records the decision. */
  async decommission(idOrName: string, actor: string): Promise<void> {
    const { write, clock, decisions, connections } = this.deps;
    const node = await this.find(idOrName);
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
  }

  private async find(idOrName: string): Promise<NodesTable> {
    const query = this.deps.db.selectFrom('nodes').selectAll();
    // The active holder of a name wins over the nodes that held it before, whatever their
    // enrollment times say: those can tie, and replicas' clocks can disagree.
    const row = UUID_RE.test(idOrName)
      ? await query.where('id', '=', idOrName).executeTakeFirst()
      : ((await query
          .where('name', '=', idOrName)
          .where('decommissioned_at', 'is', null)
          .executeTakeFirst()) ??
        (await query
          .where('name', '=', idOrName)
          .orderBy('enrolled_at', 'desc')
          .limit(1)
          .executeTakeFirst()));
    if (!row) throw new NotFoundError(`no node named or with id "${idOrName}"`);
    return row;
  }

  private view(row: NodesTable, now: number, withPem: boolean): NodeView {
    const facts = JSON.parse(row.facts) as Facts;
    const latest = row.latest === null ? null : (JSON.parse(row.latest) as Heartbeat);
    const { status, reasons } = assessNode({
      now,
      heartbeatIntervalMs: this.deps.heartbeatIntervalMs,
      enrolledAt: row.enrolled_at,
      lastSeenAt: row.last_seen_at,
      decommissionedAt: row.decommissioned_at,
      certNotAfter: row.cert_not_after,
      cpus: facts.cpus,
      latest,
    });
    return {
      id: row.id,
      name: row.name,
      profile: row.profile,
      labels: JSON.parse(row.labels) as Labels,
      status,
      reasons,
      enrolledAt: iso(row.enrolled_at),
      lastSeenAt: row.last_seen_at === null ? null : iso(row.last_seen_at),
      decommissionedAt: row.decommissioned_at === null ? null : iso(row.decommissioned_at),
      facts,
      latest,
      cert: {
        serial: row.cert_serial,
        notAfter: iso(row.cert_not_after),
        ...(withPem ? { pem: row.cert_pem } : {}),
      },
    };
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

function encodeCursor(position: { name: string; id: string }): string {
  return Buffer.from(JSON.stringify([position.name, position.id])).toString('base64url');
}

function decodeCursor(cursor: string): { name: string; id: string } {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'string')) {
      return { name: value[0] as string, id: value[1] as string };
    }
  } catch {}
  throw new BadRequestError('cursor is not one this server handed out', 'bad_cursor');
}
