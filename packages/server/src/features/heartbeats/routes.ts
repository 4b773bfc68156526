import { Heartbeat, HeartbeatAck } from '@muster/proto';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../clock.js';
import { RateLimitedError } from '../../errors.js';
import type { NodeIdentity } from '../../identity.js';
import type { HeartbeatThrottle } from './throttle.js';
import type { HeartbeatWriter } from './writer.js';

export interface HeartbeatDeps {
  writer: Pick<HeartbeatWriter, 'write'>;
  clock: Clock;
  /** The interval agents are told now (adaptive: see pacer.ts). */
  heartbeatIntervalMs: () => number;
  /** The newest signed ledger checkpoint, handed to every agent to witness. */
  latestCheckpoint?: () => string | undefined;
  /** How long a node on a retiring root gets to renew onto the new one (a CA rotation). */
  renewWindowSec?: () => number;
  /** Holds each node to its interval; a heartbeat beyond it is refused, never written. */
  throttle?: Pick<HeartbeatThrottle, 'take'>;
  /** Told of each refused heartbeat, by how it came. */
  onThrottled?: (nodeId: string, transport: HeartbeatTransport) => void;
}

export type HeartbeatTransport = 'http' | 'channel';

/** Records a heartbeat and makes its answer; the HTTP route and the agent channel share it. */
export function heartbeatAcker(deps: HeartbeatDeps) {
  return async (
    node: NodeIdentity,
    heartbeat: Heartbeat,
    transport: HeartbeatTransport = 'http',
  ): Promise<HeartbeatAck> => {
    const wait = deps.throttle?.take(node.id) ?? 0;
    if (wait > 0) {
      deps.onThrottled?.(node.id, transport);
      const every = Math.round(deps.heartbeatIntervalMs() / 1000);
      throw new RateLimitedError(
        `this node sends heartbeats faster than every ${every} s, the interval it was told; retry in ${wait} s`,
        wait,
      );
    }
    const now = deps.clock.now();
    await deps.writer.write(node.id, heartbeat, now);
    const checkpoint = deps.latestCheckpoint?.();
    return {
      nodeId: node.id,
      heartbeatIntervalSec: Math.round(deps.heartbeatIntervalMs() / 1000),
      serverTime: new Date(now).toISOString(),
      ...(node.rekeyRequested ? { rekey: true } : {}),
      ...(node.onRetiringRoot && deps.renewWindowSec ? { renewWithinSec: deps.renewWindowSec() } : {}),
      ...(checkpoint ? { checkpoint } : {}),
    };
  };
}

export function heartbeatRoutes(app: FastifyInstance, ack: ReturnType<typeof heartbeatAcker>): void {
  app.post(
    '/v1/agent/heartbeat',
    { schema: { body: Heartbeat, response: { 202: HeartbeatAck } }, config: { quiet: true } },
    async (request, reply) => reply.code(202).send(await ack(request.node!, request.body as Heartbeat)),
  );
}
