import type { EventEmitter } from 'node:events';
import type { Server as HttpsServer } from 'node:https';
import type { Heartbeat, HeartbeatAck } from '@muster/proto';
import { identifySocket, type SocketIdentityDeps } from '../../http/auth.js';
import type { NodeIdentity } from '../../identity.js';
import type { Core, Feature } from '../feature.js';
import type { HeartbeatPacer } from '../heartbeats/pacer.js';
import type { ProxiedPlane } from '../signed/index.js';
import { ChannelHub, type ChannelHubDeps } from './hub.js';

/**
 * A node may open a channel about once a second, in bursts of five: a flapping agent
 * reconnecting every 100 ms is turned away instead of churning the server.
 */
const OPENS_PER_SEC = 1;
const OPENS_BURST = 5;

/** What other features handle on the channel (commands: its opening, `running`, receipts). */
export type ChannelHandlers = Pick<ChannelHubDeps, 'onOpen' | 'running' | 'receipt'>;

export interface ChannelDeps extends Pick<Core, 'write' | 'clock' | 'decisions' | 'logger' | 'rateLimits'> {
  /** The agent plane's server the channels upgrade from. */
  server: HttpsServer;
  socketIdentity: SocketIdentityDeps;
  /** With --proxied-listen: signed channel upgrades, relayed to the hub once verified. */
  proxied?: ProxiedPlane & { relay: EventEmitter };
  pacer: Pick<HeartbeatPacer, 'intervalMs'>;
  heartbeat(node: NodeIdentity, heartbeat: Heartbeat, transport: 'channel'): Promise<HeartbeatAck>;
  handlers: ChannelHandlers;
  /** Features that send down held channels, told once the hub exists. */
  senders: Array<{ attach(channels: ChannelHub): void }>;
}

/** The agent channel (WebSocket): heartbeats and command traffic for each held node. */
export function setupChannel(deps: ChannelDeps) {
  const { write, decisions, logger } = deps;
  const channels = new ChannelHub({
    identify: (socket) =>
      deps.proxied?.holds(socket)
        ? deps.proxied.identify(socket)
        : identifySocket(socket, deps.socketIdentity),
    heartbeat: (node, heartbeat) => deps.heartbeat(node, heartbeat, 'channel'),
    heartbeatIntervalSec: () => Math.round(deps.pacer.intervalMs() / 1000),
    limiter: deps.rateLimits('channel', OPENS_PER_SEC, OPENS_BURST),
    onDuplicate: (node) => {
      logger.warn(
        { node: node.id },
        'security: a second channel opened for one node identity; the older was closed',
      );
      void write((trx) =>
        decisions.record(trx, {
          kind: 'security.duplicate_channel',
          actor: `node:${node.id}`,
          subject: `node:${node.id}`,
          data: { serial: node.serial },
        }),
      ).catch((err) => logger.warn({ err }, 'could not record a duplicate channel'));
    },
    logger,
    ...deps.handlers,
  });
  for (const sender of deps.senders) sender.attach(channels);
  channels.attach(deps.server);
  if (deps.proxied) channels.attach(deps.proxied.relay as unknown as typeof deps.server);
  return { channels, stop: () => channels.close() } satisfies Feature & { channels: ChannelHub };
}
