import type { ChannelDown, SignedCommand, SignedPolicy } from '@muster/proto';
import type { Logger } from 'pino';
import type { CommandTracker, Delivery } from './tracking.js';

export interface CommandDeliveryDeps {
  tracker: Pick<CommandTracker, 'pendingFor' | 'delivered'>;
  channels: {
    heldNodeIds(): string[];
    sendTo(nodeId: string, message: ChannelDown | { readonly text: string }): boolean;
  };
  policy: { current(): Promise<SignedPolicy | null> };
  logger: Logger;
}

/**
 * Carries pending commands down the channels this replica holds: for every held target as soon
 * as a command is issued here or another replica says one was, and for a node as soon as its
 * channel opens. Runs never overlap; a request that comes in during a run starts one more after it.
 */
export class CommandDelivery {
  private running: Promise<void> | undefined;
  private recording: Promise<void> = Promise.resolve();
  private again = false;
  private readonly wanted = new Set<string>();
  private everyone = false;
  /** The newest policy version sent to every held channel: each version goes out once. */
  private policySent = 0;

  constructor(private readonly deps: CommandDeliveryDeps) {}

  /** Delivers to every node held here (a command was issued, here or on another replica). */
  all(): void {
    this.everyone = true;
    this.kick();
  }

  /**
   * A command was just issued here: it goes at once to the targets this replica holds, with no
   * query (the rest get it from their own replica, or when they connect).
   */
  issued(signed: SignedCommand, nodeIds: readonly string[]): void {
    const text = JSON.stringify({ type: 'command', signed } satisfies ChannelDown);
    const sent: Delivery[] = [];
    for (const nodeId of nodeIds)
      if (this.deps.channels.sendTo(nodeId, { text })) sent.push({ nodeId, signed });
    this.recording = this.recording
      .then(() => this.deps.tracker.delivered(sent))
      .catch((err) => this.deps.logger.warn({ err }, 'could not record deliveries'));
  }

  /** A node's channel opened: its policy first, then its waiting commands. */
  opened(nodeId: string): void {
    void this.deps.policy
      .current()
      .then((signed) => signed && this.deps.channels.sendTo(nodeId, { type: 'policy', signed }))
      .catch((err) => this.deps.logger.warn({ err }, 'could not read the command policy'))
      .finally(() => {
        this.wanted.add(nodeId);
        this.kick();
      });
  }

  /**
   * Sends a policy newer than the last one sent to every held channel: pushed here, or on
   * another replica (its notification, or the sweep, brings it). Channels that open later get
   * the policy in force when they open.
   */
  policyPushed(signed: SignedPolicy): void {
    if (signed.policy.version <= this.policySent) return;
    this.policySent = signed.policy.version;
    for (const id of this.deps.channels.heldNodeIds())
      this.deps.channels.sendTo(id, { type: 'policy', signed });
  }

  /** Resolves once no delivery run is under way (tests and shutdown). */
  async idle(): Promise<void> {
    await this.recording;
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async run(): Promise<void> {
    const ids = this.everyone ? this.deps.channels.heldNodeIds() : [...this.wanted];
    this.everyone = false;
    this.wanted.clear();
    if (ids.length === 0) return;
    try {
      const pending = await this.deps.tracker.pendingFor(ids);
      const sent: Delivery[] = [];
      const texts = new Map<SignedCommand, string>();
      for (const delivery of pending) {
        let text = texts.get(delivery.signed);
        if (!text) {
          text = JSON.stringify({ type: 'command', signed: delivery.signed });
          texts.set(delivery.signed, text);
        }
        if (this.deps.channels.sendTo(delivery.nodeId, { text })) sent.push(delivery);
      }
      await this.deps.tracker.delivered(sent);
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not deliver commands; retrying at the next nudge');
    }
  }
}
