import type { TLSSocket } from 'node:tls';
import { RenewRequest, RenewResponse } from '@muster/proto';
import type { FastifyInstance } from 'fastify';
import { RateLimitedError } from '../../errors.js';
import type { Limiter } from '../../http/rate-limit.js';
import type { RenewalService } from './service.js';

/** `POST /v1/agent/renew`; registered inside the scope that checks the node's identity. */
export function renewalRoutes(
  app: FastifyInstance,
  renewal: Pick<RenewalService, 'renew'>,
  /** Per node: a looping agent cannot make the CA sign without end. */
  limiter: Limiter,
): void {
  app.post(
    '/v1/agent/renew',
    { schema: { body: RenewRequest, response: { 200: RenewResponse } } },
    async (request) => {
      const wait = await limiter.take(request.node!.id);
      if (wait > 0) throw new RateLimitedError('too many renewals from this node; retry later', wait);
      const presented = (request.raw.socket as TLSSocket).getPeerX509Certificate()!;
      const spki = presented.publicKey.export({ type: 'spki', format: 'der' });
      return renewal.renew(request.node!, (request.body as RenewRequest).csr, spki);
    },
  );
}
