import {
  JobExplanation,
  JobList,
  JobPlanRequest,
  JobView,
  NoBody,
  Placement,
  SignedJob,
} from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../../errors.js';
import { outsideScope } from '../access/scope.js';
import type { Gate } from '../commands/service.js';
import type { JobQueries } from './queries.js';
import type { JobService } from './service.js';
import type { JobSubmission } from './submit.js';

const IdParams = Type.Object({
  id: Type.String({
    minLength: 1,
    maxLength: 64,
    description: 'a job id, or a prefix of one (at least 4 characters) that no other id starts with',
  }),
});
const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
});

/** Admin plane: jobs — plan one, submit one signed, list, show, explain its placement, stop it. */
export function jobRoutes(
  app: FastifyInstance,
  jobs: Pick<JobService, 'plan'>,
  more?: {
    submission: Pick<JobSubmission, 'submit'>;
    queries: Pick<JobQueries, 'list' | 'get' | 'explain'>;
    stop(id: string, actor: string): Promise<void>;
  },
): void {
  app.post(
    '/v1/jobs/plan',
    {
      // Planning runs nothing, but shows where a job would go: as submitting does, it needs create.
      config: { access: { verb: 'create', resource: 'jobs' } },
      schema: { body: JobPlanRequest, response: { 200: Placement } },
    },
    async (request) => jobs.plan((request.body as JobPlanRequest).job),
  );
  if (!more) return;
  app.post(
    '/v1/jobs',
    {
      config: { access: { verb: 'create', resource: 'jobs', scoped: true } },
      schema: { body: SignedJob, response: { 201: JobView } },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await more.submission.submit(request.body as SignedJob, request.actor, gate(request))),
  );
  app.get(
    '/v1/jobs',
    {
      config: { access: { verb: 'read', resource: 'jobs' } },
      schema: { querystring: ListQuery, response: { 200: JobList } },
    },
    async (request) => {
      const q = request.query as { limit?: number; cursor?: string };
      return more.queries.list({ limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    },
  );
  app.get(
    '/v1/jobs/:id',
    {
      config: { access: { verb: 'read', resource: 'jobs' } },
      schema: { params: IdParams, response: { 200: JobView } },
    },
    async (request) => more.queries.get((request.params as { id: string }).id),
  );
  app.get(
    '/v1/jobs/:id/explain',
    {
      config: { access: { verb: 'read', resource: 'jobs' } },
      schema: { params: IdParams, response: { 200: JobExplanation } },
    },
    async (request) => more.queries.explain((request.params as { id: string }).id),
  );
  app.delete(
    '/v1/jobs/:id',
    {
      config: { access: { verb: 'delete', resource: 'jobs' } },
      schema: { params: IdParams, body: NoBody, response: { 200: JobView } },
    },
    async (request) => {
      const view = await more.queries.get((request.params as { id: string }).id);
      await more.stop(view.id, request.actor);
      return more.queries.get(view.id);
    },
  );
}

/** The request's scope and refusal, as the job submission checks nodes and signers with them. */
function gate(request: FastifyRequest): Gate {
  return {
    async targets(targets) {
      const refusal = outsideScope(request.principal, 'create', 'jobs', targets);
      if (refusal) await request.denyAccess!(refusal);
    },
    deny: async (detail) => {
      if (request.denyAccess) return request.denyAccess(detail);
      throw new ForbiddenError(detail);
    },
  };
}
