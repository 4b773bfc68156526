import { NoBody, TokenCreated, TokenCreateRequest, TokenView } from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TokenService } from './service.js';

export function tokenRoutes(
  app: FastifyInstance,
  tokens: Pick<TokenService, 'create' | 'list' | 'revoke'>,
): void {
  app.post(
    '/v1/tokens',
    {
      config: { access: { verb: 'create', resource: 'tokens' } },
      schema: { body: TokenCreateRequest, response: { 201: TokenCreated } },
    },
    async (request, reply) => {
      const created = await tokens.create((request.body ?? {}) as TokenCreateRequest, request.actor);
      return reply.code(201).send(created);
    },
  );
  app.get(
    '/v1/tokens',
    {
      config: { access: { verb: 'read', resource: 'tokens' } },
      schema: { response: { 200: Type.Object({ items: Type.Array(TokenView) }) } },
    },
    async () => ({
      items: await tokens.list(),
    }),
  );
  app.delete(
    '/v1/tokens/:id',
    {
      config: { access: { verb: 'delete', resource: 'tokens' } },
      schema: { params: Type.Object({ id: Type.String({ maxLength: 64 }) }), body: NoBody },
    },
    async (request, reply) => {
      await tokens.revoke((request.params as { id: string }).id, request.actor);
      return reply.code(204).send();
    },
  );
}
