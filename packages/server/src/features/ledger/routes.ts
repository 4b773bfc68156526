import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { LedgerService } from './service.js';

const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Hashes = Type.Array(Type.String());

export function ledgerRoutes(app: FastifyInstance, ledger: LedgerService): void {
  app.get(
    '/v1/ledger/key',
    {
      config: { access: { verb: 'read', resource: 'ledger' } },
      schema: { response: { 200: Type.Object({ origin: Type.String(), vkey: Type.String() }) } },
    },
    async () => ({ origin: ledger.origin, vkey: ledger.vkey }),
  );
  app.get(
    '/v1/ledger/checkpoint',
    { config: { access: { verb: 'read', resource: 'ledger' } } },
    async (_request, reply) => {
      const { note } = await ledger.checkpoint();
      return reply.type('text/plain; charset=utf-8').send(note);
    },
  );
  app.get(
    '/v1/ledger/entries',
    {
      config: { access: { verb: 'read', resource: 'ledger' } },
      schema: {
        querystring: Type.Object({ start: Type.Optional(Seq), end: Type.Optional(Seq) }),
        response: {
          200: Type.Object({
            size: Type.Integer(),
            entries: Type.Array(
              Type.Object({ seq: Type.Integer(), entry: Type.String(), leafHash: Type.String() }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const q = request.query as { start?: number; end?: number };
      return ledger.entries(q.start ?? 0, q.end);
    },
  );
  app.get(
    '/v1/ledger/proof/inclusion',
    {
      config: { access: { verb: 'read', resource: 'ledger' } },
      schema: {
        querystring: Type.Object({ seq: Seq, size: Type.Optional(Seq) }),
        response: { 200: Type.Object({ seq: Type.Integer(), size: Type.Integer(), hashes: Hashes }) },
      },
    },
    async (request) => {
      const q = request.query as { seq: number; size?: number };
      return ledger.inclusion(q.seq, q.size);
    },
  );
  app.get(
    '/v1/ledger/proof/consistency',
    {
      config: { access: { verb: 'read', resource: 'ledger' } },
      schema: {
        querystring: Type.Object({ from: Seq, to: Type.Optional(Seq) }),
        response: { 200: Type.Object({ from: Type.Integer(), to: Type.Integer(), hashes: Hashes }) },
      },
    },
    async (request) => {
      const q = request.query as { from: number; to?: number };
      return ledger.consistency(q.from, q.to);
    },
  );
  app.get(
    '/v1/ledger/decisions',
    {
      config: { access: { verb: 'read', resource: 'ledger' } },
      schema: {
        querystring: Type.Object({
          kind: Type.Optional(Type.String({ maxLength: 128 })),
          subject: Type.Optional(Type.String({ maxLength: 256 })),
          actor: Type.Optional(
            Type.String({ maxLength: 256, description: 'user:<name>, node:<id> or system' }),
          ),
          before: Type.Optional(Seq),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
      },
    },
    async (request) => {
      const q = request.query as {
        kind?: string;
        subject?: string;
        actor?: string;
        before?: number;
        limit?: number;
      };
      return ledger.decisions({
        limit: q.limit ?? 100,
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.subject ? { subject: q.subject } : {}),
        ...(q.actor ? { actor: q.actor } : {}),
        ...(q.before !== undefined ? { before: q.before } : {}),
      });
    },
  );
}

/** What agents need to witness the ledger, on the agent plane under their own identity. */
export function ledgerAgentRoutes(app: FastifyInstance, ledger: LedgerService): void {
  app.get(
    '/v1/agent/ledger/consistency',
    {
      schema: {
        querystring: Type.Object({ from: Seq, to: Type.Optional(Seq) }),
        response: { 200: Type.Object({ from: Type.Integer(), to: Type.Integer(), hashes: Hashes }) },
      },
      config: { quiet: true },
    },
    async (request) => {
      const q = request.query as { from: number; to?: number };
      return ledger.consistency(q.from, q.to);
    },
  );
}
