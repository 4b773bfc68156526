import { X509Certificate } from 'node:crypto';
import {
  type Facts,
  type Heartbeat,
  type Labels,
  MUSTER_VERSION,
  type NodeList,
  type NodeView,
} from '@muster/proto';
import { NotFoundError } from '../../errors.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { idStartsWith, MAX_PREFIX_CANDIDATES, MIN_ID_PREFIX, onlyMatch } from '../../store/id-prefix.js';
import type { NodesTable } from '../../store/schema.js';
import type { NodeQuery, NodeServiceDeps } from './service.js';
import { assessNode, certificateIssuedAt, DEFAULT_THRESHOLDS } from './status.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PAGE = 500;

export type NodeViewsDeps = Pick<
  NodeServiceDeps,
  'db' | 'clock' | 'heartbeatIntervalMs' | 'thresholds' | 'clockSkewAllowanceMs'
>;

/** Nodes as the API shows them: looked up, listed page by page, status computed now. */
export class NodeViews {
  constructor(private readonly deps: NodeViewsDeps) {}

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

  /** A node's row by id, by name (the active holder first) or by a unique id prefix. */
  async find(idOrName: string): Promise<NodesTable> {
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
