import type { HeartbeatAck, SignedCommand } from '@muster/proto';
import type { Logger } from 'pino';
import { type Clock, every } from '../../clock.js';
import type { ServerConfig } from '../../config.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import type { NodeIdentity } from '../../identity.js';
import type { ServerIdentity } from '../../pki/datadir.js';
import { BatchedLookup } from '../../store/batched-lookup.js';
import type { Store } from '../../store/db.js';
import type { ScopeFilter } from '../access/scope.js';
import type { EventSink } from '../events/service.js';
import type { Feature } from '../feature.js';
import { ApprovalService } from './approvals.js';
import { CommandDelivery, type CommandDeliveryDeps } from './delivery.js';
import { POLICY_CHANNEL, PolicyService } from './policy.js';
import { CommandQueries } from './queries.js';
import { commandAgentRoutes, commandRoutes } from './routes.js';
import { COMMANDS_CHANNEL, CommandService } from './service.js';
import { CommandTracker } from './tracking.js';

/** How often commands are expired and pending ones re-sent down held channels. */
const SWEEP_MS = 5_000;

export interface CommandsSetup {
  store: Store;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
  events: Pick<EventSink, 'append'>;
  config: Pick<ServerConfig, 'clockSkewAllowanceMs'>;
  identity: Pick<ServerIdentity, 'fleetRoot'>;
  logger: Logger;
  signal: AbortSignal;
  /** Filters listings down to commands on nodes a narrowed role reaches. */
  scope: Pick<ScopeFilter, 'items' | 'commandTargets'>;
}

/**
 * The signed-commands feature, wired: the policy, the command service and its tracker, and,
 * once the channel hub exists (`attach`), delivery over held channels, the expiry sweep and the
 * safety net under replica notifications.
 */
export function setupCommands(setup: CommandsSetup) {
  const { store, write, clock, decisions, events, logger, signal } = setup;
  let delivery: CommandDelivery | undefined;
  const policy = new PolicyService({
    db: store.db,
    write,
    clock,
    decisions,
    fleetRoot: setup.identity.fleetRoot.publicKey,
    ...(store.notifications ? { notifications: store.notifications } : {}),
    onPushed: (signed) => delivery?.policyPushed(signed),
  });
  const tracker = new CommandTracker({ db: store.db, write, clock, decisions, events });
  const commands = new CommandService({
    db: store.db,
    write,
    traits: store.traits,
    clock,
    decisions,
    policy,
    skewAllowanceMs: setup.config.clockSkewAllowanceMs,
    ...(store.notifications ? { notifications: store.notifications } : {}),
    onIssued: (signed, nodeIds) => delivery?.issued(signed, nodeIds),
  });
  const approvals = new ApprovalService({
    db: store.db,
    write,
    traits: store.traits,
    clock,
    decisions,
    policy,
    ...(store.notifications ? { notifications: store.notifications } : {}),
    onIssued: (signed, nodeIds) => delivery?.issued(signed, nodeIds),
  });
  // Agents without a channel learn of their commands in the answer to an HTTP heartbeat.
  const waiting = new BatchedLookup<string, SignedCommand[]>(async (ids) => {
    const found = new Map<string, SignedCommand[]>();
    for (const d of await tracker.pendingFor(ids))
      found.set(d.nodeId, [...(found.get(d.nodeId) ?? []), d.signed]);
    return found;
  });
  const queries = new CommandQueries(store.db, clock);
  return {
    policy,
    tracker,
    commands,
    approvals,
    queries,
    adminRoutes: (scope) =>
      commandRoutes(scope, { policy, commands, approvals, queries, scope: setup.scope }),
    agentRoutes: (scope) => commandAgentRoutes(scope, { tracker, policy }),
    /** What the channel hub calls for command traffic. */
    channelHooks: {
      onOpen: (node: NodeIdentity) => delivery?.opened(node.id),
      running: (node: NodeIdentity, commandId: string) => tracker.running(node.id, commandId),
      receipt: (node: NodeIdentity, receipt: Parameters<CommandTracker['receipt']>[1]) =>
        tracker.receipt(node.id, receipt),
    },
    /** Starts delivering over the hub's channels, and the background sweeps. */
    attach(channels: CommandDeliveryDeps['channels']): void {
      delivery = deliverOverChannels({ store, tracker, policy, channels, logger, signal, clock });
    },
    /** An HTTP heartbeat's answer, with the policy version and any commands waiting for the node. */
    async httpAnswer(node: NodeIdentity, ack: HeartbeatAck): Promise<HeartbeatAck> {
      const version = policy.knownVersion();
      const answer = version === undefined ? ack : { ...ack, policyVersion: version };
      const pending = await waiting.get(node.id);
      if (!pending) return answer;
      await tracker.delivered(pending.map((signed) => ({ nodeId: node.id, signed })));
      return { ...answer, commands: pending };
    },
    /** Before the planes close: deliveries and tracking still under way. */
    async stop(): Promise<void> {
      await delivery?.idle();
      await tracker.idle();
    },
  } satisfies Feature & Record<string, unknown>;
}

/**
 * Delivery over the hub's held channels: what replicas announce goes down them at once, and a
 * sweep expires commands and re-sends whatever is still pending.
 */
function deliverOverChannels(d: {
  store: Store;
  tracker: CommandTracker;
  policy: PolicyService;
  channels: CommandDeliveryDeps['channels'];
  logger: Logger;
  signal: AbortSignal;
  clock: Clock;
}): CommandDelivery {
  const { store, tracker, policy, channels, logger, signal, clock } = d;
  const deliveries = new CommandDelivery({ tracker, channels, policy, logger });
  // A policy pushed on any replica goes down the channels this one holds.
  const refreshPolicy = (broadcast: boolean) =>
    policy
      .current()
      .then((signed) => {
        if (signed && broadcast) deliveries.policyPushed(signed);
      })
      .catch((err) => logger.warn({ err }, 'could not read the command policy'));
  store.notifications?.listen(COMMANDS_CHANNEL, () => deliveries.all(), signal);
  store.notifications?.listen(POLICY_CHANNEL, () => void refreshPolicy(true), signal);
  // On the clock's timers, so a test moves a sweep on by advancing the clock, not by waiting.
  every(
    clock,
    SWEEP_MS,
    () => {
      tracker.expire().catch((err) => logger.warn({ err }, 'could not expire commands'));
      // Without notifications (replicas on one SQLite file) the sweep is the only messenger;
      // with them, the listener also re-reads the policy after every reconnection.
      void refreshPolicy(!store.notifications);
      // A safety net under notifications: whatever is still pending for a held node goes now.
      deliveries.all();
    },
    signal,
  );
  return deliveries;
}
