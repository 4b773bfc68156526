import type { Heartbeat, HeartbeatAck } from '@muster/proto';
import type { NodeIdentity } from '../../identity.js';
import type { Store } from '../../store/db.js';
import { CaRotationService } from '../ca/rotation.js';
import type { Core, Feature } from '../feature.js';
import type { LedgerService } from '../ledger/service.js';
import type { Metrics } from '../metrics/metrics.js';
import type { StatusWatcher } from '../nodes/status-watch.js';
import { HeartbeatPacer } from './pacer.js';
import { type HeartbeatTransport, heartbeatAcker, heartbeatRoutes } from './routes.js';
import { HeartbeatThrottle, throttleReport } from './throttle.js';
import { HeartbeatWriter } from './writer.js';

/** How often the fleet is counted to pace heartbeats. */
const FLEET_COUNT_MS = 10_000;

/** Nodes not decommissioned: the fleet the heartbeat interval is paced for. */
async function activeNodes(db: Store['db']): Promise<number> {
  const row = await db
    .selectFrom('nodes')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('decommissioned_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * The heartbeat pace: the interval agents are told, stretched as the fleet grows. Set up apart
 * from the heartbeats themselves because nodes and enrollment need the pace before the
 * heartbeat writer (which needs the status watcher of nodes) can exist.
 */
export function setupPacing(deps: Pick<Core, 'config' | 'store' | 'clock' | 'logger'>) {
  const { config, clock, logger } = deps;
  const pacer = new HeartbeatPacer(config.heartbeatIntervalMs, config.maxHeartbeatRate, clock);
  return {
    pacer,
    start(signal) {
      pacer.start(
        () => activeNodes(deps.store.db),
        FLEET_COUNT_MS,
        signal,
        (err) => logger.warn({ err }, 'could not count the fleet to pace heartbeats'),
      );
    },
  } satisfies Feature & { pacer: HeartbeatPacer };
}

export interface HeartbeatsDeps extends Pick<Core, 'config' | 'store' | 'clock' | 'logger'> {
  pacer: Pick<HeartbeatPacer, 'intervalMs' | 'stalenessIntervalMs'>;
  statusWatcher: Pick<StatusWatcher, 'nudge' | 'heard'>;
  ledger: Pick<LedgerService, 'latestCheckpoint'>;
  metrics: Pick<Metrics, 'heartbeats' | 'heartbeatsThrottled'>;
  /** Adds what an HTTP heartbeat's answer carries besides the ack (commands, policy version). */
  httpAnswer(node: NodeIdentity, ack: HeartbeatAck): Promise<HeartbeatAck>;
}

/** Heartbeats: written in batches, throttled to the pace, answered over HTTP and the channel. */
export function setupHeartbeats(deps: HeartbeatsDeps) {
  const { config, clock, logger, pacer, statusWatcher, metrics } = deps;
  // A heartbeat that moves a node's health is checked at once, not at the next sweep.
  const writer = new HeartbeatWriter(deps.store.db, {
    onChanged: (ids) => statusWatcher.nudge(ids),
    quietMs: () => 2.5 * pacer.stalenessIntervalMs(),
    onSeen: (seen) => statusWatcher.heard(seen),
    sampleGapMs: () => pacer.intervalMs() / 2,
  });
  const acker = heartbeatAcker({
    writer,
    throttle: new HeartbeatThrottle(clock, () => pacer.intervalMs(), config.heartbeatBurst),
    onThrottled: throttleReport(logger, clock, (transport) => metrics.heartbeatsThrottled.inc({ transport })),
    clock,
    heartbeatIntervalMs: () => pacer.intervalMs(),
    latestCheckpoint: () => deps.ledger.latestCheckpoint(),
    renewWindowSec: () => CaRotationService.renewWindowSec(pacer.intervalMs()),
  });
  /** Takes one heartbeat, counted by how it came, and makes its ack. */
  const take = async (node: NodeIdentity, heartbeat: Heartbeat, transport: HeartbeatTransport) => {
    const ack = await acker(node, heartbeat, transport);
    metrics.heartbeats.inc({ transport });
    return ack;
  };
  return {
    take,
    agentRoutes: (scope) =>
      heartbeatRoutes(scope, async (node, heartbeat) =>
        deps.httpAnswer(node, await take(node, heartbeat, 'http')),
      ),
    idle: () => writer.idle(),
  } satisfies Feature & { take: typeof take };
}
