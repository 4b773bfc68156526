import { randomBytes } from 'node:crypto';
import {
  type Facts,
  FINGERPRINT_PATTERN,
  type Labels,
  type NodeRequestBody,
  type NodeRequestState,
  type PendingRequestView,
  type RequestDecision,
  type RequestStatus,
  type SignedGrant,
} from '@muster/proto';
import type { Kysely } from 'kysely';
import { ConflictError, NotFoundError, RateLimitedError, UnprocessableError } from '../../errors.js';
import { verifiedCsrKey } from '../../pki/csr.js';
import type { Store } from '../../store/db.js';
import type { DialectTraits } from '../../store/dialect.js';
import type { NodeRequestsTable, Schema } from '../../store/schema.js';
import type { EventSink } from '../events/service.js';
import { DEFAULT_PROFILE } from '../tokens/service.js';
import {
  type AdmitDeps,
  type Admitted,
  enrolledAnswer,
  insertNode,
  issueFor,
  refuseHeldName,
} from './admit.js';
import type { RequestQueueSettings } from './settings.js';
import { commitNode, readAsked, signRequest } from './sign.js';

export interface RequestServiceDeps extends AdmitDeps {
  db: Kysely<Schema>;
  write: Store['write'];
  events: Pick<EventSink, 'append'>;
  traits: Pick<DialectTraits, 'isUniqueViolation'>;
  settings: Pick<RequestQueueSettings, 'ttlMs' | 'maxPending'>;
  /** The agent-plane URL a grant names, for a host that was given no --server. */
  publicUrl: () => string;
}

/**
 * Enrollment without a join token: a queue of requests an operator approves or rejects by name
 * and key fingerprint, and request files signed at once for hosts with no route to the server.
 * Every approval, rejection and signature is a ledger decision made by the operator.
 */
export class RequestService {
  constructor(private readonly deps: RequestServiceDeps) {}

  /** Queues a host's request; the same key asking again gets the request it already has. */
  async request(body: NodeRequestBody, source: string): Promise<NodeRequestState> {
    const { db, clock } = this.deps;
    const asked = readAsked(body);
    const now = clock.now();
    await this.expireDue(now);
    const waiting = await this.pendingFor(asked.name);
    if (waiting) {
      if (waiting.fingerprint === asked.fingerprint) return this.stateOf(waiting);
      throw this.pendingWithOtherKey(asked.name);
    }
    await refuseHeldName(db, asked.name);
    const { n } = await db
      .selectFrom('node_requests')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('status', '=', 'pending')
      .executeTakeFirstOrThrow();
    if (Number(n) >= this.deps.settings.maxPending)
      throw new RateLimitedError(
        `the enrollment queue is full (${n} requests waiting); retry later, or ask an operator to approve or reject some (muster nodes pending)`,
        60,
      );
    const row: NodeRequestsTable = {
      id: `req_${randomBytes(16).toString('hex')}`,
      name: asked.name,
      fingerprint: asked.fingerprint,
      csr: body.csr,
      profile: asked.profile ?? null,
      labels: JSON.stringify(asked.labels),
      facts: JSON.stringify(asked.facts),
      source,
      status: 'pending',
      created_at: now,
      expires_at: now + this.deps.settings.ttlMs,
      decided_at: null,
      decided_by: null,
      node_id: null,
      cert_pem: null,
      not_after: null,
    };
    try {
      await this.deps.write(async (trx) => {
        await trx.insertInto('node_requests').values(row).execute();
        await this.deps.events.append(trx, {
          kind: 'enrollment.requested',
          actor: 'system',
          severity: 'info',
          data: { request: row.id, name: row.name, fingerprint: row.fingerprint, source },
        });
      });
    } catch (err) {
      // Two requests for one name at once, on this replica or another: the unique index decides.
      if (this.deps.traits.isUniqueViolation(err)) throw this.pendingWithOtherKey(asked.name);
      throw err;
    }
    return this.stateOf(row);
  }

  /** What a polling host learns: still pending, rejected, expired, or its certificate. */
  async state(id: string): Promise<NodeRequestState> {
    await this.expireDue(this.deps.clock.now());
    const row = await this.deps.db
      .selectFrom('node_requests')
      .selectAll()
      .where('id', '=', id)
      .where('source', '!=', 'offline')
      .executeTakeFirst();
    if (!row)
      throw new NotFoundError(
        'no such enrollment request; start the agent with --request again',
        'unknown_request',
      );
    return this.stateOf(row);
  }

  async pending(): Promise<PendingRequestView[]> {
    await this.expireDue(this.deps.clock.now());
    const rows = await this.deps.db
      .selectFrom('node_requests')
      .selectAll()
      .where('status', '=', 'pending')
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      fingerprint: row.fingerprint,
      source: row.source,
      profile: row.profile,
      labels: JSON.parse(row.labels) as Labels,
      hostname: (JSON.parse(row.facts) as Facts).hostname,
      requestedAt: new Date(row.created_at).toISOString(),
      expiresAt: new Date(row.expires_at).toISOString(),
    }));
  }

  /**
   * Lets the host in, only if the fingerprint the operator compared is the request's key: a
   * mismatch changes nothing. The certificate is stored with the request, so the host gets it
   * from whichever replica it polls.
   */
  async approve(name: string, fingerprint: string, actor: string): Promise<RequestDecision> {
    if (!FINGERPRINT_PATTERN.test(fingerprint))
      throw new UnprocessableError(
        'fingerprint must be sha256: and 64 lowercase hex digits',
        'bad_fingerprint',
      );
    const now = this.deps.clock.now();
    await this.expireDue(now);
    const row = await this.pendingFor(name);
    if (!row) throw this.noPending(name);
    if (row.fingerprint !== fingerprint)
      throw new ConflictError(
        `the fingerprint given is not the key of the request for ${name}; compare it again with what the host printed (nothing was approved)`,
        'fingerprint_mismatch',
      );
    await refuseHeldName(this.deps.db, name);
    const admitted = this.admittedFrom(row);
    const nodeId = this.deps.ids.nodeId();
    const issued = issueFor(this.deps, admitted, nodeId, now);
    await commitNode(
      this.deps,
      async (trx) => {
        const taken = await trx
          .updateTable('node_requests')
          .set({
            status: 'approved',
            decided_at: now,
            decided_by: actor,
            node_id: nodeId,
            cert_pem: issued.pem,
            not_after: issued.notAfter,
          })
          .where('id', '=', row.id)
          .where('status', '=', 'pending')
          .where('expires_at', '>', now)
          .returning('id')
          .executeTakeFirst();
        // Another operator, or the clock, decided it in between: nothing is issued.
        if (!taken) throw this.noPending(name);
        await insertNode(trx, this.deps, admitted, nodeId, issued, actor, now);
      },
      name,
    );
    return { name, fingerprint, status: 'approved', nodeId };
  }

  async reject(name: string, actor: string): Promise<RequestDecision> {
    const now = this.deps.clock.now();
    await this.expireDue(now);
    const row = await this.pendingFor(name);
    if (!row) throw this.noPending(name);
    await this.deps.write(async (trx) => {
      const taken = await trx
        .updateTable('node_requests')
        .set({ status: 'rejected', decided_at: now, decided_by: actor })
        .where('id', '=', row.id)
        .where('status', '=', 'pending')
        .returning('id')
        .executeTakeFirst();
      if (!taken) throw this.noPending(name);
      await this.deps.decisions.record(trx, {
        kind: 'enrollment.rejected',
        actor,
        subject: `request:${row.id}`,
        data: { name, fingerprint: row.fingerprint, source: row.source },
      });
    });
    return { name, fingerprint: row.fingerprint, status: 'rejected' };
  }

  /** Signs a request file brought over by hand: the node exists at once, and a key is signed once. */
  sign(body: NodeRequestBody, actor: string): Promise<SignedGrant> {
    return signRequest(this.deps, body, actor);
  }

  /**
   * Marks requests past their time as expired, once, whichever replica sees it first, with an
   * event each. A read comes first, so the common case (nothing due) writes nothing.
   */
  async expireDue(now: number): Promise<void> {
    const { db, write, events } = this.deps;
    const due = await db
      .selectFrom('node_requests')
      .select('id')
      .where('status', '=', 'pending')
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    if (!due) return;
    await write(async (trx) => {
      const expired = await trx
        .updateTable('node_requests')
        .set({ status: 'expired', decided_at: now })
        .where('status', '=', 'pending')
        .where('expires_at', '<=', now)
        .returning(['id', 'name', 'fingerprint', 'source'])
        .execute();
      for (const row of expired)
        await events.append(trx, {
          kind: 'enrollment.expired',
          actor: 'system',
          severity: 'info',
          data: { request: row.id, name: row.name, fingerprint: row.fingerprint, source: row.source },
        });
    });
  }

  private admittedFrom(row: NodeRequestsTable): Admitted {
    return {
      requestId: row.id,
      name: row.name,
      fingerprint: row.fingerprint,
      spki: verifiedCsrKey(row.csr),
      profile: row.profile ?? DEFAULT_PROFILE,
      labels: JSON.parse(row.labels) as Labels,
      facts: JSON.parse(row.facts) as Facts,
      via: 'request',
    };
  }

  private pendingFor(name: string): Promise<NodeRequestsTable | undefined> {
    return this.deps.db
      .selectFrom('node_requests')
      .selectAll()
      .where('name', '=', name)
      .where('status', '=', 'pending')
      .executeTakeFirst();
  }

  private stateOf(row: NodeRequestsTable): NodeRequestState {
    const status = row.status as RequestStatus;
    return {
      id: row.id,
      name: row.name,
      fingerprint: row.fingerprint,
      status,
      expiresAt: new Date(row.expires_at).toISOString(),
      ...(status === 'approved' && row.node_id && row.cert_pem && row.not_after !== null
        ? {
            enrolled: enrolledAnswer(this.deps, {
              nodeId: row.node_id,
              name: row.name,
              certPem: row.cert_pem,
              notAfter: row.not_after,
              profile: row.profile ?? DEFAULT_PROFILE,
              labels: JSON.parse(row.labels) as Labels,
            }),
          }
        : {}),
    };
  }

  private pendingWithOtherKey(name: string): ConflictError {
    return new ConflictError(
      `a request for ${name} is already waiting with another key; an operator may reject it (muster nodes reject ${name}), or ask under another --name`,
      'request_pending',
    );
  }

  private noPending(name: string): NotFoundError {
    return new NotFoundError(
      `no enrollment request for ${name} is waiting (see muster nodes pending); it may have been decided or expired`,
      'no_pending_request',
    );
  }
}
