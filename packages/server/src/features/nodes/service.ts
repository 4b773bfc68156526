import { X509Certificate } from 'node:crypto';
import {
  type Facts,
  type Heartbeat,
  type Labels,
  MUSTER_VERSION,
  type NodeFacets,
  type NodeList,
  type NodeStatus,
  type NodeView,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { ConflictError, NotFoundError } from '../../errors.js';
import type { LiveConnections } from '../../http/connections.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import type { NodeIdentity, RefusedSerial } from '../../identity.js';
import { BatchedLookup } from '../../store/batched-lookup.js';
import type { Store } from '../../store/db.js';
import { idStartsWith, MAX_PREFIX_CANDIDATES, MIN_ID_PREFIX, onlyMatch } from '../../store/id-prefix.js';
import type { NodesTable, Schema } from '../../store/schema.js';
import { assessNode, certificateIssuedAt, DEFAULT_THRESHOLDS, type Thresholds } from './status.js';

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

  /**
   * The first use of a renewed certificate makes it current and supersedes the one before,
   * which is refused from then on. Concurrent first uses promote it once.
   */
  async promote(nodeId: string, serial: string): Promise<void> {
    const { write, clock, decisions } = this.deps;
    const now = clock.now();
    await write(async (trx) => {
      const node = await trx
        .selectFrom('nodes')
        .select(['cert_serial', 'pending_serial', 'pending_not_after', 'pending_pem'])
        .where('id', '=', nodeId)
        .where('pending_serial', '=', serial)
        .where('decommissioned_at', 'is', null)
        .executeTakeFirst();
      if (!node) return;
      await trx
        .updateTable('nodes')
        .set({
          cert_serial: serial,
          cert_not_after: node.pending_not_after!,
          cert_pem: node.pending_pem!,
          pending_serial: null,
          pending_not_after: null,
          pending_pem: null,
        })
        .where('id', '=', nodeId)
        .execute();
      await trx
        .updateTable('certificates')
        .set({ superseded_at: now })
        .where('serial', '=', node.cert_serial)
        .execute();
      await decisions.record(trx, {
        kind: 'node.certificate_activated',
        actor: `node:${nodeId}`,
        subject: `node:${nodeId}`,
        data: { serial, superseded: node.cert_serial },
      });
    });
  }

  /**
   * Looks at a serial the identity check refused. A superseded certificate presented again
   * means the identity may be in use on two hosts: that is recorded as a security decision
   * (at most once a minute per certificate, so a looping client cannot flood the record).
   */
  async noteRefusedSerial(serial: string): Promise<RefusedSerial> {
    const { db, write, clock, decisions } = this.deps;
    const cert = await db
      .selectFrom('certificates')
      .select(['node_id', 'superseded_at', 'reuse_seen_at', 'revoked_at'])
      .where('serial', '=', serial)
      .executeTakeFirst();
    if (!cert || cert.superseded_at === null || cert.revoked_at !== null) return 'other';
    const now = clock.now();
    if (cert.reuse_seen_at === null || now - cert.reuse_seen_at >= 60_000) {
      await write(async (trx) => {
        await trx
          .updateTable('certificates')
          .set({ reuse_seen_at: now })
          .where('serial', '=', serial)
          .execute();
        await decisions.record(trx, {
          kind: 'security.superseded_certificate_used',
          actor: `node:${cert.node_id}`,
          subject: `node:${cert.node_id}`,
          data: { serial, supersededAt: cert.superseded_at },
        });
      });
    }
    return 'superseded';
  }

  /** Asks a node to renew onto a fresh key at its next contact (`muster nodes rotate`). */
  async requestRotation(idOrName: string, actor: string): Promise<NodeView> {
    const { write, clock, decisions } = this.deps;
    const node = await this.find(idOrName);
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
    return this.get(node.id);
  }

  async list(query: NodeQuery): Promise<NodeList> {
    const items: NodeView[] = [];
    let after = query.cursor ? decodeCursor(query.cursor, readNodePosition) : undefined;
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
        // Scope first, on the labels alone: a node out of it costs no status assessment.
        if (
          query.visible &&
          !query.visible({ labels: JSON.parse(row.labels) as Labels, profile: row.profile })
        )
          continue;
        const view = this.view(row, now, false);
        if (query.status && view.status !== query.status) continue;
        if (query.label && view.labels[query.label.key] !== query.label.value) continue;
        items.push(view);
        if (items.length === query.limit) return { items, nextCursor: encodeCursor([after.name, after.id]) };
      }
      if (rows.length < PAGE) return { items, nextCursor: null };
    }
  }

  /** Active nodes by id, as the list shows them (status and reasons computed now). */
  async views(ids: readonly string[]): Promise<NodeView[]> {
    if (ids.length === 0) return [];
    const now = this.deps.clock.now();
    const rows = await this.deps.db
      .selectFrom('nodes')
      .selectAll()
      .where('id', 'in', [...ids])
      .where('decommissioned_at', 'is', null)
      .execute();
    return rows.map((row) => this.view(row, now, false));
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
    this.deps.onDecommissioned?.(node.id);
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
    if (row) return row;
    // Neither a name nor a whole id: the start of exactly one node's id, as git takes hashes.
    if (idOrName.length >= MIN_ID_PREFIX && /^[0-9a-f-]+$/.test(idOrName)) {
      const rows = await query
        .where(idStartsWith(idOrName))
        .orderBy('id')
        .limit(MAX_PREFIX_CANDIDATES + 1)
        .execute();
      if (rows.length > 0) return onlyMatch(rows, idOrName, 'node');
    }
    throw new NotFoundError(`no node named or with id "${idOrName}"`);
  }

  private view(row: NodesTable, now: number, withPem: boolean): NodeView {
    const facts = JSON.parse(row.facts) as Facts;
    const latest = row.latest === null ? null : (JSON.parse(row.latest) as Heartbeat);
    const cert = certificateFacts(row.cert_serial, row.cert_pem);
    const { status, reasons } = assessNode({
      now,
      heartbeatIntervalMs: this.deps.heartbeatIntervalMs(),
      enrolledAt: row.enrolled_at,
      lastSeenAt: row.last_seen_at,
      decommissionedAt: row.decommissioned_at,
      certNotAfter: row.cert_not_after,
      certIssuedAt: certificateIssuedAt(cert.notBefore, row.cert_not_after),
      renewedNotAfter: row.pending_not_after,
      cpus: facts.cpus,
      latest,
      clockSkewAllowanceMs: this.deps.clockSkewAllowanceMs ?? DEFAULT_CLOCK_SKEW_ALLOWANCE_MS,
      thresholds: this.deps.thresholds?.(row.profile) ?? DEFAULT_THRESHOLDS,
      agentVersion: facts.agentVersion,
      serverVersion: MUSTER_VERSION,
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
        issuer: cert.issuer,
        notBefore: iso(cert.notBefore),
        notAfter: iso(row.cert_not_after),
        pending:
          row.pending_serial === null
            ? null
            : { serial: row.pending_serial, notAfter: iso(row.pending_not_after!) },
        rotationRequestedAt: row.rekey_requested_at === null ? null : iso(row.rekey_requested_at),
        ...(withPem ? { pem: row.cert_pem } : {}),
      },
    };
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

export const DEFAULT_CLOCK_SKEW_ALLOWANCE_MS = 5 * 60_000;

/** Issuer and start of validity, read from the PEM once per serial (listings show many nodes). */
const certFacts = new Map<string, { issuer: string; notBefore: number }>();
function certificateFacts(serial: string, pem: string): { issuer: string; notBefore: number } {
  let facts = certFacts.get(serial);
  if (!facts) {
    const cert = new X509Certificate(pem);
    facts = { issuer: cert.issuer.split('\n').join(', '), notBefore: Date.parse(cert.validFrom) };
    if (certFacts.size >= 200_000) certFacts.clear();
    certFacts.set(serial, facts);
  }
  return facts;
}

/** A node listing's position, `[name, id]` on the wire (see http/cursor.ts). */
function readNodePosition(value: unknown): { name: string; id: string } | undefined {
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'string')) {
    return { name: value[0] as string, id: value[1] as string };
  }
  return undefined;
}
