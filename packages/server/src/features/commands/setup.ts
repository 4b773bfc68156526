import type { HeartbeatAck, SignedCommand } from '@muster/proto';
import type { Logger } from 'pino';
import { type Clock, every } from '../../clock.js';
import type { DecisionRecorder } from '../../decisions/recorder.js';
import { BatchedLookup } from '../../store/batched-lookup.js';
import type { Store } from '../../store/db.js';
import type { EventSink } from '../events/service.js';
import type { NodeIdentity } from '../nodes/service.js';
import { ApprovalService } from './approvals.js';
import { CommandDelivery, type CommandDeliveryDeps } from './delivery.js';
import { POLICY_CHANNEL, PolicyService } from './policy.js';
import { CommandQueries } from './queries.js';
import { COMMANDS_CHANNEL, CommandService } from './service.js';
import { CommandTracker } from './tracking.js';

/** How often commands past their deadline are expired and pending deliveries retried. */
const SWEEP_EVERY_MS = 5_000;

export interface CommandsSetup {
  store: Store;
  write: Store['write'];
  clock: Clock;
  decisions: DecisionRecorder;
  events: Pick<EventSink, 'append'>;
  fleetRoot: string;
  skewAllowanceMs: number;
  logger: Logger;
  signal: AbortSignal;
}

/**
 * The signed-commands feature, wired: the policy, the command service and its tracker, and,
 * once the channel hub exists (`attach`), delivery over held channels, the expiry sweep and the
 * safety net under replica notifications.
 */
export function startCommands(setup: CommandsSetup) {
  const { store, write, clock, decisions, events, logger, signal } = setup;
  let delivery: CommandDelivery | undefined;
  const policy = new PolicyService({
    db: store.db,
    write,
    clock,
    decisions,
    fleetRoot: setup.fleetRoot,
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
    skewAllowanceMs: setup.skewAllowanceMs,
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
  return {
    policy,
    tracker,
    commands,
    approvals,
    queries: new CommandQueries(store.db, clock),
    /** What the channel hub calls for command traffic. */
    channelHooks: {
      onOpen: (node: NodeIdentity) => delivery?.opened(node.id),
      running: (node: NodeIdentity, commandId: string) => tracker.running(node.id, commandId),
      receipt: (node: NodeIdentity, receipt: Parameters<CommandTracker['receipt']>[1]) =>
        tracker.receipt(node.id, receipt),
    },
    /** Starts delivering over the hub's channels, and the background sweeps. */
    attach(channels: CommandDeliveryDeps['channels']): void {
      const deliveries = new CommandDelivery({ tracker, channels, policy, logger });
      delivery = deliveries;
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
        SWEEP_EVERY_MS,
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
    async idle(): Promise<void> {
      await delivery?.idle();
      await tracker.idle();
    },
  };
}
