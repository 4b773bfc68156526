import { CaFinishRequest, CaStatus, NoBody } from '@muster/proto';
import type { FastifyInstance } from 'fastify';
import type { CaRotationService } from './rotation.js';
import type { CaService } from './service.js';

export function caRoutes(
  app: FastifyInstance,
  ca: Pick<CaService, 'status'>,
  rotation: Pick<CaRotationService, 'rotate' | 'finish'>,
): void {
  app.get(
    '/v1/ca',
    { config: { access: { verb: 'read', resource: 'ca' } }, schema: { response: { 200: CaStatus } } },
    async () => ca.status(),
  );
  // Both answer with the status as it stands after the step, so the CLI shows what changed.
  app.post(
    '/v1/ca/rotate',
    {
      config: { access: { verb: 'update', resource: 'ca' } },
      schema: { body: NoBody, response: { 201: CaStatus } },
    },
    async (request, reply) => {
      await rotation.rotate(request.actor);
      return reply.code(201).send(await ca.status());
    },
  );
  app.post(
    '/v1/ca/finish',
    {
      config: { access: { verb: 'update', resource: 'ca' } },
      schema: { body: CaFinishRequest, response: { 200: CaStatus } },
    },
    async (request) => {
      await rotation.finish(request.actor, (request.body as CaFinishRequest | undefined)?.force === true);
      return ca.status();
    },
  );
}
