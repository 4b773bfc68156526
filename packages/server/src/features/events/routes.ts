import type { ServerResponse } from 'node:http';
import { EventCreateRequest, EventEnvelope, EventList } from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequestError } from '../../errors.js';
import { eventNodes, readableNodes, type ScopeFilter } from '../access/scope.js';
import { DEFAULT_EVENTS_PER_PAGE, type EventService } from './service.js';
import type { EventStreams, StreamFilter } from './streams.js';

const ListQuery = Type.Object({
  since: Type.Optional(
    Type.String({ maxLength: 64, description: 'RFC 3339 time: only events at or after it' }),
  ),
  kind: Type.Optional(
    Type.String({ maxLength: 1024, description: 'a kind, or several separated by commas' }),
  ),
  node: Type.Optional(Type.String({ maxLength: 256, description: 'a node id or name' })),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, description: 'default 100; more than 1000 is read as 1000' }),
  ),
  cursor: Type.Optional(Type.String({ maxLength: 1024 })),
});

const StreamQuery = Type.Object({
  kind: Type.Optional(Type.String({ maxLength: 1024, description: 'only these kinds (comma-separated)' })),
  node: Type.Optional(
    Type.String({ maxLength: 256, description: 'only events about this node (id or name)' }),
  ),
  lastEventId: Type.Optional(
    Type.String({ maxLength: 32, description: 'for clients that cannot set the Last-Event-ID header' }),
  ),
});

const MAX_KINDS = 32;

/** How often an open stream checks that its credential still holds, with the same role. */
export const STREAM_RECHECK_MS = 5_000;

/** Events: history newest first, operator events, and the live stream (Server-Sent Events). */
export function eventRoutes(
  app: FastifyInstance,
  events: Pick<EventService, 'list' | 'create' | 'nodeIds'>,
  streams: Pick<EventStreams, 'serve'>,
  /** Filters listings down to the nodes a narrowed role reaches. */
  scope?: Pick<ScopeFilter, 'items'>,
  /** Authenticates the request again: false once its credential is revoked, expired or its user disabled. */
  recheck?: (request: FastifyRequest) => Promise<boolean>,
): void {
  app.get(
    '/v1/events',
    {
      config: { access: { verb: 'read', resource: 'events', scoped: true } },
      schema: { querystring: ListQuery, response: { 200: EventList } },
    },
    async (request) => {
      const q = request.query as {
        since?: string;
        kind?: string;
        node?: string;
        limit?: number;
        cursor?: string;
      };
      const kinds = parseKinds(q.kind);
      const page = await events.list({
        limit: q.limit ?? DEFAULT_EVENTS_PER_PAGE,
        ...(q.since !== undefined ? { since: parseSince(q.since) } : {}),
        ...(kinds ? { kinds } : {}),
        ...(q.node !== undefined && q.node !== '' ? { node: q.node } : {}),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      });
      // A page may come back shorter than asked; its cursor still goes on from where it ended.
      return scope
        ? { ...page, items: await scope.items(request.principal, 'events', page.items, eventNodes) }
        : page;
    },
  );
  app.post(
    '/v1/events',
    {
      config: { access: { verb: 'create', resource: 'events' } },
      schema: { body: EventCreateRequest, response: { 201: EventEnvelope } },
    },
    async (request, reply) => {
      const created = await events.create(request.body as EventCreateRequest, request.actor || 'admin');
      return reply.code(201).send(created);
    },
  );
  app.get(
    '/v1/events/stream',
    {
      config: { access: { verb: 'read', resource: 'events', scoped: true } },
      schema: { querystring: StreamQuery },
    },
    async (request, reply) => {
      const q = request.query as { kind?: string; node?: string; lastEventId?: string };
      const node = q.node?.trim() || undefined;
      const asked = streamFilter(parseKinds(q.kind), node, node ? await events.nodeIds(node) : []);
      // A role narrowed to some nodes sees events about them only, as in the listing above.
      const visible = readableNodes(request.principal, 'events');
      const wants: StreamFilter | undefined = visible
        ? (event, about) => about !== undefined && visible(about) && (asked?.(event) ?? true)
        : asked;
      const header = request.headers['last-event-id'];
      const text = (Array.isArray(header) ? header[0] : header) ?? q.lastEventId;
      let resumeAfter: number | undefined;
      if (text !== undefined && text.trim() !== '') {
        if (!/^\d{1,15}$/.test(text.trim())) {
          throw new BadRequestError(
            'Last-Event-ID must be an event id this server handed out',
            'bad_last_event_id',
          );
        }
        resumeAfter = Number(text.trim());
      }
      // The stream outlives this handler: Fastify lets go of the response and the streams own it.
      reply.hijack();
      reply.raw.setHeader('x-request-id', request.id);
      if (recheck) endWhenRevoked(request, reply.raw, recheck);
      await streams.serve(reply.raw, resumeAfter, wants, visible !== undefined);
    },
  );
}

/**
 * A stream outlives the check made when it opened: it is cut once its credential no longer
 * holds (a disabled user, a revoked token, a session signed out) or its roles changed, and the
 * client's reconnect is decided afresh.
 */
function endWhenRevoked(
  request: FastifyRequest,
  res: ServerResponse,
  recheck: (request: FastifyRequest) => Promise<boolean>,
): void {
  const roles = JSON.stringify(request.principal?.roles ?? null);
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    recheck(request)
      .catch(() => false)
      .then((ok) => {
        if (!ok || JSON.stringify(request.principal?.roles ?? null) !== roles) res.destroy();
      })
      .finally(() => {
        checking = false;
      });
  }, STREAM_RECHECK_MS);
  timer.unref();
  res.on('close', () => clearInterval(timer));
}

/** A comma-separated list of kinds; undefined when none is asked for. */
function parseKinds(text: string | undefined): string[] | undefined {
  const kinds = text
    ?.split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  if (kinds && kinds.length > MAX_KINDS)
    throw new BadRequestError(`at most ${MAX_KINDS} kinds`, 'bad_filter');
  return kinds && kinds.length > 0 ? kinds : undefined;
}

/**
 * What a filtered stream sends. A node is matched by every id its name has had (names are
 * reused after decommission), and by name in an enrollment, so a node that enrolls after the
 * stream opened is followed from then on.
 */
function streamFilter(
  kinds: string[] | undefined,
  node: string | undefined,
  knownIds: string[],
): ((event: EventEnvelope) => boolean) | undefined {
  if (!kinds && node === undefined) return undefined;
  const ids = new Set([...(node !== undefined ? [node] : []), ...knownIds]);
  return (event) => {
    if (kinds && !kinds.includes(event.kind)) return false;
    if (node === undefined) return true;
    if (event.nodeId === undefined) return false;
    if (event.kind === 'node.enrolled' && event.data.name === node) ids.add(event.nodeId);
    return ids.has(event.nodeId);
  };
}

function parseSince(text: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}T/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new BadRequestError('since must be an RFC 3339 time such as 2026-01-01T00:00:00Z', 'bad_since');
  }
  return ms;
}
