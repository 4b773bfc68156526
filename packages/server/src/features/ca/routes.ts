import { CaStatus } from '@muster/proto';
import type { FastifyInstance } from 'fastify';
import type { CaService } from './service.js';

export function caRoutes(app: FastifyInstance, ca: Pick<CaService, 'status'>): void {
  app.get('/v1/ca', { schema: { response: { 200: CaStatus } } }, async () => ca.status());
}
