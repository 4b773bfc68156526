import { JobPlanRequest, Placement } from '@muster/proto';
import type { FastifyInstance } from 'fastify';
import type { JobService } from './service.js';

/** Admin plane: jobs. For now `plan`: where a job would go and why, nothing stored. */
export function jobRoutes(app: FastifyInstance, jobs: Pick<JobService, 'plan'>): void {
  app.post(
    '/v1/jobs/plan',
    {
      // Planning runs nothing, but shows where a job would go: as submitting does, it needs create.
      config: { access: { verb: 'create', resource: 'jobs' } },
      schema: { body: JobPlanRequest, response: { 200: Placement } },
    },
    async (request) => jobs.plan((request.body as JobPlanRequest).job),
  );
}
