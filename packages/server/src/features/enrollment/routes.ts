import { EnrollRequest, EnrollResponse } from '@muster/proto';
import type { FastifyInstance } from 'fastify';
import { RateLimitedError } from '../../errors.js';
import type { Limiter } from '../../http/rate-limit.js';
import type { EnrollmentService } from './service.js';

export function enrollmentRoutes(
  app: FastifyInstance,
  enrollment: Pick<EnrollmentService, 'enroll'>,
  limiter: Limiter,
): void {
  app.post(
    '/v1/enroll',
    {
      schema: { body: EnrollRequest, response: { 201: EnrollResponse } },
      // Limited before the body is even parsed, so a flood of junk costs as little as possible.
      onRequest: async (request) => {
        const wait = await limiter.take(request.ip);
        if (wait > 0) throw new RateLimitedError('too many enrollments from this address; retry later', wait);
      },
    },
    async (request, reply) => reply.code(201).send(await enrollment.enroll(request.body as EnrollRequest)),
  );
}
