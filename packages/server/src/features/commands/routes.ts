import {
  COMMAND_ID_PATTERN,
  CommandAccepted,
  CommandList,
  CommandSignature,
  CommandView,
  OperatorCreateRequest,
  OperatorView,
  PolicyState,
  Receipt,
  SignedCommand,
  SignedPolicy,
  type TargetCandidate,
} from '@muster/proto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../../errors.js';
import type { NodeIdentity } from '../../identity.js';
import { narrowedRole, outsideScope, type ScopeFilter } from '../access/scope.js';
import type { ApprovalService } from './approvals.js';
import type { PolicyService } from './policy.js';
import type { CommandQueries } from './queries.js';
import type { CommandService, Gate } from './service.js';
import type { CommandTracker } from './tracking.js';

const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
});

/** Admin plane: policy, operators, and the commands themselves. */
export function commandRoutes(
  app: FastifyInstance,
  deps: {
    policy: Pick<PolicyService, 'state' | 'push' | 'addOperator' | 'operators'>;
    commands: Pick<CommandService, 'issue'>;
    approvals: Pick<ApprovalService, 'approve'>;
    queries: Pick<CommandQueries, 'list' | 'get'>;
    /** Filters the listing down to commands on nodes a narrowed role reaches. */
    scope?: Pick<ScopeFilter, 'items' | 'commandTargets'>;
  },
): void {
  app.get(
    '/v1/policy',
    { config: { access: { verb: 'read', resource: 'policy' } }, schema: { response: { 200: PolicyState } } },
    async () => deps.policy.state(),
  );
  app.post(
    '/v1/policy',
    {
      config: { access: { verb: 'update', resource: 'policy' } },
      schema: { body: SignedPolicy, response: { 201: SignedPolicy } },
    },
    async (request, reply) =>
      reply.code(201).send(await deps.policy.push(request.body as SignedPolicy, request.actor)),
  );
  app.get(
    '/v1/operators',
    {
      config: { access: { verb: 'read', resource: 'operators' } },
      schema: { response: { 200: Type.Object({ items: Type.Array(OperatorView) }) } },
    },
    async () => ({ items: await deps.policy.operators() }),
  );
  app.post(
    '/v1/operators',
    {
      config: { access: { verb: 'create', resource: 'operators' } },
      schema: { body: OperatorCreateRequest, response: { 201: OperatorView } },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await deps.policy.addOperator(request.body as OperatorCreateRequest, request.actor)),
  );
  app.post(
    '/v1/commands',
    {
      // Scoped: a role narrowed to some nodes may submit, if every node the command selects is in scope.
      config: { access: { verb: 'create', resource: 'commands', scoped: true } },
      schema: { body: SignedCommand, response: { 202: CommandAccepted } },
    },
    async (request, reply) =>
      reply
        .code(202)
        .send(
          await deps.commands.issue(request.body as SignedCommand, request.actor, gate(request, 'create')),
        ),
  );
  app.post(
    '/v1/commands/:id/approvals',
    {
      config: { access: { verb: 'approve', resource: 'commands', scoped: true } },
      schema: {
        params: Type.Object({ id: Type.String({ pattern: COMMAND_ID_PATTERN }) }),
        body: CommandSignature,
        response: { 200: CommandAccepted },
      },
    },
    async (request) =>
      deps.approvals.approve(
        (request.params as { id: string }).id,
        request.body as CommandSignature,
        request.actor,
        gate(request, 'approve'),
      ),
  );
  app.get(
    '/v1/commands',
    {
      config: { access: { verb: 'read', resource: 'commands', scoped: true } },
      schema: { querystring: ListQuery, response: { 200: CommandList } },
    },
    async (request) => {
      const q = request.query as { limit?: number; cursor?: string };
      const page = await deps.queries.list({
        limit: q.limit ?? 50,
        ...(q.cursor ? { cursor: q.cursor } : {}),
      });
      const { scope } = deps;
      if (!scope) return page;
      return {
        ...page,
        items: await scope.items(request.principal, 'commands', page.items, scope.commandTargets),
      };
    },
  );
  app.get(
    '/v1/commands/:id',
    {
      config: { access: { verb: 'read', resource: 'commands', scoped: true } },
      schema: {
        params: Type.Object({
          id: Type.String({
            minLength: 1,
            maxLength: 64,
            description:
              'a command id, or a prefix of one (at least 4 characters) that no other id starts with; a prefix of several answers 409 ambiguous_id naming them',
          }),
        }),
        response: { 200: CommandView },
      },
    },
    async (request) => {
      const command = await deps.queries.get((request.params as { id: string }).id);
      const { scope } = deps;
      if (
        scope &&
        (await scope.items(request.principal, 'commands', [command], scope.commandTargets)).length === 0
      )
        await request.denyAccess!(
          `role ${narrowedRole(request.principal, 'read', 'commands')} may not read commands outside its scope (command ${command.id})`,
        );
      return command;
    },
  );
}

/** The request's scope and refusal, as the command service checks signers with them. */
function gate(request: FastifyRequest, verb: 'create' | 'approve'): Gate {
  return {
    async targets(targets: TargetCandidate[]) {
      const refusal = outsideScope(request.principal, verb, 'commands', targets);
      if (refusal) await request.denyAccess!(refusal);
    },
    deny: async (detail) => {
      if (request.denyAccess) return request.denyAccess(detail);
      throw new ForbiddenError(detail);
    },
  };
}

/** Agent plane: the HTTP fallbacks for agents that hold no channel. */
export function commandAgentRoutes(
  app: FastifyInstance,
  deps: {
    tracker: Pick<CommandTracker, 'receipt' | 'running'>;
    policy: Pick<PolicyService, 'current'>;
  },
): void {
  app.post('/v1/agent/receipts', { schema: { body: Receipt } }, async (request, reply) => {
    await deps.tracker.receipt((request.node as NodeIdentity).id, request.body as Receipt);
    return reply.code(202).send({ commandId: (request.body as Receipt).commandId });
  });
  app.post(
    '/v1/agent/running',
    {
      schema: {
        body: Type.Object(
          { commandId: Type.String({ pattern: COMMAND_ID_PATTERN }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      await deps.tracker.running(
        (request.node as NodeIdentity).id,
        (request.body as { commandId: string }).commandId,
      );
      return reply.code(202).send({});
    },
  );
  app.get('/v1/agent/policy', async (_request, reply) => {
    const signed = await deps.policy.current();
    return signed ? signed : reply.code(204).send();
  });
}
