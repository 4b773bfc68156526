import {
  LABEL_KEY_PATTERN,
  NODE_STATUSES,
  NoBody,
  NodeList,
  type NodeStatus,
  NodeView,
  PROFILE_PATTERN,
} from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { BadRequestError } from '../../errors.js';
import { readableNodes } from '../access/scope.js';
import type { NodeService } from './service.js';

const ListQuery = Type.Object({
  status: Type.Optional(Type.Union(NODE_STATUSES.map((s) => Type.Literal(s)))),
  label: Type.Optional(Type.String({ maxLength: 256 })),
  profile: Type.Optional(Type.String({ pattern: PROFILE_PATTERN })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 1024 })),
});
const NodeParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

export function nodeRoutes(
  app: FastifyInstance,
  nodes: Pick<NodeService, 'list' | 'get' | 'decommission' | 'requestRotation'>,
): void {
  app.get(
    '/v1/nodes',
    {
      config: { access: { verb: 'read', resource: 'nodes', scoped: true } },
      schema: { querystring: ListQuery, response: { 200: NodeList } },
    },
    async (request) => {
      const q = request.query as {
        status?: NodeStatus;
        label?: string;
        profile?: string;
        limit?: number;
        cursor?: string;
      };
      let label: { key: string; value: string } | undefined;
      if (q.label !== undefined) {
        const eq = q.label.indexOf('=');
        const key = q.label.slice(0, eq);
        if (eq <= 0 || !new RegExp(LABEL_KEY_PATTERN).test(key))
          throw new BadRequestError('label must be key=value');
        label = { key, value: q.label.slice(eq + 1) };
      }
      const visible = readableNodes(request.principal, 'nodes');
      return nodes.list({
        limit: q.limit ?? 100,
        ...(visible ? { visible } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(q.profile ? { profile: q.profile } : {}),
        ...(q.cursor ? { cursor: q.cursor } : {}),
        ...(label ? { label } : {}),
      });
    },
  );
  app.get(
    '/v1/nodes/:id',
    {
      config: { access: { verb: 'read', resource: 'nodes', nodeParam: 'id' } },
      schema: { params: NodeParams, response: { 200: NodeView } },
    },
    async (request) => nodes.get((request.params as { id: string }).id),
  );
  app.post(
    '/v1/nodes/:id/rotate',
    {
      config: { access: { verb: 'update', resource: 'nodes', nodeParam: 'id' } },
      schema: { params: NodeParams, body: NoBody, response: { 202: NodeView } },
    },
    async (request, reply) =>
      reply.code(202).send(await nodes.requestRotation((request.params as { id: string }).id, request.actor)),
  );
  app.delete(
    '/v1/nodes/:id',
    {
      config: { access: { verb: 'delete', resource: 'nodes', nodeParam: 'id' } },
      schema: { params: NodeParams, body: NoBody },
    },
    async (request, reply) => {
      await nodes.decommission((request.params as { id: string }).id, request.actor);
      return reply.code(204).send();
    },
  );
}
