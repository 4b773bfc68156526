import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import { BadRequestError } from '../../errors.js';
import type { Schema } from '../../store/schema.js';
import type { NodeService } from '../nodes/service.js';
import { type Rollup, readSeries } from './store.js';

const Point = Type.Object({
  ts: Type.String(),
  cpuPct: Type.Number(),
  cpuMaxPct: Type.Number(),
  load1: Type.Number(),
  memUsedPct: Type.Number(),
  diskUsedPct: Type.Number(),
  samples: Type.Integer(),
});
const STEPS = { raw: 'raw', '1m': 'minute', '1h': 'hour' } as const;
const MAX_POINTS = 5000;

/** Picks the finest step whose points for the range fit in a chart: raw, per minute, per hour. */
export function stepFor(rangeMs: number, rawWindowMs: number): 'raw' | Rollup {
  if (rangeMs <= rawWindowMs && rangeMs <= 3 * 3_600_000) return 'raw';
  if (rangeMs <= 3 * 86_400_000) return 'minute';
  return 'hour';
}

export function telemetryRoutes(
  app: FastifyInstance,
  deps: { db: Kysely<Schema>; clock: Clock; nodes: Pick<NodeService, 'get'>; rawRetentionMs: number },
): void {
  app.get(
    '/v1/nodes/:id/telemetry',
    {
      config: { access: { verb: 'read', resource: 'nodes', nodeParam: 'id' } },
      schema: {
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }),
        querystring: Type.Object({
          since: Type.Optional(Type.String({ format: 'date-time' })),
          until: Type.Optional(Type.String({ format: 'date-time' })),
          step: Type.Optional(
            Type.Union([Type.Literal('auto'), Type.Literal('raw'), Type.Literal('1m'), Type.Literal('1h')]),
          ),
        }),
        response: {
          200: Type.Object({
            nodeId: Type.String(),
            step: Type.String(),
            since: Type.String(),
            until: Type.String(),
            points: Type.Array(Point),
          }),
        },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const q = request.query as { since?: string; until?: string; step?: 'auto' | 'raw' | '1m' | '1h' };
      const node = await deps.nodes.get(id); // 404 for an unknown node
      const until = q.until ? Date.parse(q.until) : deps.clock.now();
      const since = q.since ? Date.parse(q.since) : until - 3_600_000;
      if (!(since < until)) throw new BadRequestError('since must be before until', 'bad_range');
      if (until - since > 400 * 86_400_000)
        throw new BadRequestError('a range of at most 400 days', 'bad_range');
      const step = !q.step || q.step === 'auto' ? stepFor(until - since, deps.rawRetentionMs) : STEPS[q.step];
      const points = await readSeries(deps.db, node.id, step, since, until, MAX_POINTS);
      return {
        nodeId: node.id,
        step: step === 'raw' ? 'raw' : step === 'minute' ? '1m' : '1h',
        since: new Date(since).toISOString(),
        until: new Date(until).toISOString(),
        points,
      };
    },
  );
}
