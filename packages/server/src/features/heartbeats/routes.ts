import { Heartbeat, HeartbeatAck } from '@muster/proto';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../clock.js';
import type { HeartbeatWriter } from './writer.js';

export function heartbeatRoutes(
  app: FastifyInstance,
  deps: {
    writer: Pick<HeartbeatWriter, 'write'>;
    clock: Clock;
    heartbeatIntervalMs: number;
    /** The newest signed ledger checkpoint, handed to every agent to witness. */
    latestCheckpoint?: () => string | undefined;
  },
): void {
  app.post(
    '/v1/agent/heartbeat',
    { schema: { body: Heartbeat, response: { 202: HeartbeatAck } }, config: { quiet: true } },
    async (request, reply) => {
      const node = request.node!;
      const now = deps.clock.now();
      await deps.writer.write(node.id, request.body as Heartbeat, now);
      const checkpoint = deps.latestCheckpoint?.();
      return reply.code(202).send({
        nodeId: node.id,
        heartbeatIntervalSec: Math.round(deps.heartbeatIntervalMs / 1000),
        serverTime: new Date(now).toISOString(),
        ...(node.rekeyRequested ? { rekey: true } : {}),
        ...(checkpoint ? { checkpoint } : {}),
      });
    },
  );
}
