import type { Receipt, SignedCommand, SignedPolicy } from './commands.js';
import type { Heartbeat, HeartbeatAck } from './wire.js';

/**
 * The agent channel (`GET /v1/agent/channel`, a WebSocket over the node's mTLS identity):
 * one JSON object per message. Heartbeats (and later receipts) go up; settings, answers
 * (and later commands and checkpoints) come down.
 */
export const CHANNEL_PATH = '/v1/agent/channel';

/** Close codes the server uses, so an agent can tell why its channel ended. */
export const CHANNEL_CLOSE = {
  /** A newer channel for the same identity took over. */
  superseded: 4000,
  /** The identity is no longer current (decommissioned, revoked, superseded, expired). */
  identity: 4001,
  /** The agent sent something that is not a channel message. */
  protocol: 4002,
  /** The server is stopping; reconnect elsewhere or later. */
  shutdown: 1001,
} as const;

export type ChannelUp =
  | { type: 'heartbeat'; heartbeat: Heartbeat }
  /** The agent checked a command and started it. */
  | { type: 'running'; commandId: string }
  | { type: 'receipt'; receipt: Receipt };

export type ChannelDown =
  | { type: 'settings'; heartbeatIntervalSec: number }
  /** A command, as the operator signed it: the agent checks everything again itself. */
  | { type: 'command'; signed: SignedCommand }
  /** The root-signed policy in force; sent on connect and whenever a newer one is pushed. */
  | { type: 'policy'; signed: SignedPolicy }
  /** The server stored the receipt for this command: the agent may forget it. */
  | { type: 'receipt_ack'; commandId: string }
  | { type: 'ack'; seq: number; ack: HeartbeatAck }
  | { type: 'error'; seq?: number; commandId?: string; status: number; detail: string };
