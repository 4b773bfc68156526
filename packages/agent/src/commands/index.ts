import type { Log } from '@muster/host';
import type { ChannelDown, ChannelUp, HeartbeatAck, Receipt } from '@muster/proto';
import type { StoredIdentity } from '../identity.js';
import { CommandRunner } from './runner.js';

/** The agent's command side, as the heartbeat loop drives it. */
export interface AgentCommands {
  /** A message the server sent down the channel. */
  onMessage(message: ChannelDown): void;
  /** After each heartbeat: commands and policy news carried by an HTTP answer; receipts to resend. */
  afterHeartbeat(ack: HeartbeatAck): Promise<void>;
  /** Waits for commands under way to end (they are killed when the agent's signal aborts). */
  close(): Promise<void>;
}

export interface CommandsOptions {
  identity(): StoredIdentity;
  dataDir: string;
  log: Log;
  signal: AbortSignal;
  send(message: ChannelUp): boolean;
  /** A request over the node's mTLS identity to the agent plane. */
  request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T | undefined>;
  now?: () => number;
}

const OFF: AgentCommands = {
  onMessage() {},
  async afterHeartbeat() {},
  async close() {},
};

/** Starts the runner when this node pinned a fleet root at enrollment; commands stay off otherwise. */
export async function startCommands(opts: CommandsOptions): Promise<AgentCommands> {
  const start = opts.identity();
  if (!start.fleetRoot || !start.profile) {
    opts.log.warn(
      'commands are off: this node pinned no fleet root at enrollment (enroll with the --root-pin from "muster token create")',
    );
    return OFF;
  }
  const runner = await CommandRunner.start({
    dataDir: opts.dataDir,
    rootKey: start.fleetRoot,
    self: () => {
      const id = opts.identity();
      return {
        id: id.nodeId,
        name: id.name,
        profile: id.profile ?? '',
        labels: id.labels ?? {},
        keyPem: id.keyPem,
      };
    },
    send: (message) => opts.send(message),
    postReceipt: async (receipt: Receipt) => {
      await opts.request('POST', '/v1/agent/receipts', receipt);
    },
    log: opts.log,
    signal: opts.signal,
    ...(opts.now ? { now: opts.now } : {}),
  });
  const underway = new Set<Promise<void>>();
  // A policy is taken before any command that came after it is checked.
  let policies: Promise<void> = Promise.resolve();
  const offer = (signed: unknown) => {
    policies = policies
      .then(() => runner.offerPolicy(signed))
      .catch((err) =>
        opts.log.error('could not store the command policy', { error: (err as Error).message }),
      );
    return policies;
  };
  const run = (signed: unknown) => {
    const done = policies
      .then(() => runner.handle(signed))
      .catch((err) => opts.log.error('a command could not be handled', { error: (err as Error).message }))
      .finally(() => underway.delete(done));
    underway.add(done);
  };
  return {
    onMessage(message) {
      if (message.type === 'command') run(message.signed);
      else if (message.type === 'policy') void offer(message.signed);
      else if (message.type === 'receipt_ack') void runner.acked(message.commandId);
      else if (message.type === 'error' && message.commandId) {
        // Refused for good (not ours, bad signature): sending it again would not help.
        opts.log.warn('the server refused a receipt', {
          commandId: message.commandId,
          detail: message.detail,
        });
        if (message.status < 500) void runner.acked(message.commandId);
      }
    },
    async afterHeartbeat(ack) {
      if (ack.policyVersion !== undefined && ack.policyVersion > runner.policy.version) {
        const signed = await opts.request<unknown>('GET', '/v1/agent/policy').catch(() => undefined);
        if (signed) await offer(signed);
      }
      for (const signed of ack.commands ?? []) run(signed);
      runner.resend();
    },
    async close() {
      await Promise.all([...underway]);
    },
  };
}
