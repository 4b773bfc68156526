import {
  ApproveRequestBody,
  NoBody,
  NodeRequestBody,
  NodeRequestState,
  PendingRequestList,
  RequestDecision,
  SignedGrant,
} from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { RateLimitedError } from '../../errors.js';
import type { Limiter } from '../../http/rate-limit.js';
import { sourceOf } from '../../http/rate-limit.js';
import type { RequestService } from './service.js';

/** The agent plane's side, without a client certificate: a host asks, then polls its request. */
export function requestAgentRoutes(
  app: FastifyInstance,
  requests: Pick<RequestService, 'request' | 'state'>,
  limiter: Limiter,
): void {
  app.post(
    '/v1/enroll/requests',
    {
      schema: { body: NodeRequestBody, response: { 202: NodeRequestState } },
      // Counted before the body is parsed: a flood from one address is cheap to turn away.
      onRequest: async (request) => {
        const wait = await limiter.take(sourceOf(request.ip));
        if (wait > 0)
          throw new RateLimitedError(
            `too many enrollment requests from this address; retry in ${wait} s (the server allows --request-rate per minute)`,
            wait,
          );
      },
    },
    async (request, reply) =>
      reply.code(202).send(await requests.request(request.body as NodeRequestBody, request.ip)),
  );
  app.get(
    '/v1/enroll/requests/:id',
    {
      schema: {
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: NodeRequestState },
      },
    },
    async (request) => requests.state((request.params as { id: string }).id),
  );
}

const NameParams = Type.Object({ name: Type.String({ maxLength: 64 }) });

/** The operator's side: the queue, approving by fingerprint, rejecting, signing a request file. */
export function requestAdminRoutes(
  app: FastifyInstance,
  requests: Pick<RequestService, 'pending' | 'approve' | 'reject' | 'sign'>,
): void {
  app.get(
    '/v1/enrollment/requests',
    {
      config: { access: { verb: 'read', resource: 'nodes' } },
      schema: { response: { 200: PendingRequestList } },
    },
    async () => ({ items: await requests.pending() }),
  );
  app.post(
    '/v1/enrollment/requests/:name/approve',
    {
      config: { access: { verb: 'approve', resource: 'nodes' } },
      schema: { params: NameParams, body: ApproveRequestBody, response: { 200: RequestDecision } },
    },
    async (request) =>
      requests.approve(
        (request.params as { name: string }).name,
        (request.body as ApproveRequestBody).fingerprint,
        request.actor,
      ),
  );
  app.post(
    '/v1/enrollment/requests/:name/reject',
    {
      config: { access: { verb: 'approve', resource: 'nodes' } },
      schema: { params: NameParams, body: NoBody, response: { 200: RequestDecision } },
    },
    async (request) => requests.reject((request.params as { name: string }).name, request.actor),
  );
  app.post(
    '/v1/enrollment/grants',
    {
      config: { access: { verb: 'create', resource: 'nodes' } },
      schema: { body: NodeRequestBody, response: { 201: SignedGrant } },
    },
    async (request, reply) =>
      reply.code(201).send(await requests.sign(request.body as NodeRequestBody, request.actor)),
  );
}
