import type { SocketIdentityDeps } from '../../http/auth.js';
import { LiveConnections } from '../../http/connections.js';
import { rateLimitedLog } from '../../rate-limited-log.js';
import type { EventSink } from '../events/service.js';
import type { Core, Feature } from '../feature.js';
import type { HeartbeatPacer } from '../heartbeats/pacer.js';
import { CertificateRecovery } from './recovery.js';
import { nodeRoutes } from './routes.js';
import { NodeService } from './service.js';
import { StatusWatcher } from './status-watch.js';

/** How often node status is swept for changes no heartbeat announced (a node gone silent). */
const STATUS_SWEEP_MS = 5_000;

export interface NodesDeps
  extends Pick<Core, 'config' | 'store' | 'write' | 'clock' | 'decisions' | 'roots' | 'logger'> {
  pacer: Pick<HeartbeatPacer, 'stalenessIntervalMs'>;
  events: Pick<EventSink, 'append'>;
}

/**
 * Nodes: listing, detail and decommission, the identities their certificates map to, the
 * connections they hold, and the status watcher that announces status changes as events.
 */
export function setupNodes(deps: NodesDeps) {
  const { config, store, write, clock, logger, pacer } = deps;
  const connections = new LiveConnections();
  const nodes = new NodeService({
    db: store.db,
    write,
    clock,
    decisions: deps.decisions,
    connections,
    heartbeatIntervalMs: () => pacer.stalenessIntervalMs(),
    thresholds: (profile) => config.thresholds[profile] ?? config.thresholds.default!,
    clockSkewAllowanceMs: config.clockSkewAllowanceMs,
    onDecommissioned: (id) => statusWatcher.nudge([id]),
  });
  const statusWatcher = new StatusWatcher({
    db: store.db,
    write,
    nudgeFailed: rateLimitedLog(
      logger,
      'status-nudge',
      'could not check the nodes a heartbeat nudged',
      clock,
    ),
    nodes,
    events: deps.events,
    clock,
    debounceMs: config.statusDebounceMs,
    heartbeatIntervalMs: () => pacer.stalenessIntervalMs(),
  });
  // A newer certificate of a known node the store never saw (a restore from before a renewal).
  const recovery = new CertificateRecovery({
    db: store.db,
    write,
    clock,
    decisions: deps.decisions,
    roots: deps.roots,
  });
  /** How a client certificate on the agent plane becomes a node identity (routes and channels). */
  const socketIdentity: SocketIdentityDeps = {
    identityBySerial: (s) => nodes.identityBySerial(s),
    promote: (id, s) => nodes.promote(id, s),
    noteRefusedSerial: (s) => nodes.noteRefusedSerial(s),
    recover: (cert) => recovery.recover(cert),
    connections,
    clock,
    roots: deps.roots,
  };
  return {
    nodes,
    statusWatcher,
    connections,
    socketIdentity,
    adminRoutes: (scope) => nodeRoutes(scope, nodes),
    start(signal) {
      statusWatcher.start(STATUS_SWEEP_MS, signal, (err) => {
        if (!signal.aborted) logger.warn({ err }, 'could not sweep node status');
      });
    },
  } satisfies Feature & Record<string, unknown>;
}
