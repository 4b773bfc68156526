import { type Log, requestJson } from '@muster/host';
import type { ChannelDown } from '@muster/proto';
import { AgentChannel } from './channel.js';
import { type AgentCommands, startCommands } from './commands/index.js';
import type { AgentConfig } from './config.js';
import type { DialingAgent } from './dial.js';
import type { StoredIdentity } from './identity.js';
import { channelTls } from './renewer.js';
import type { ServerList } from './servers.js';

export interface CommandLinkDeps {
  servers: ServerList;
  dataDir: string;
  log: Log;
  signal: AbortSignal;
  /** The identity held now, and the connection presenting it (both change at each renewal). */
  identity: () => StoredIdentity;
  tls: () => DialingAgent;
  config: AgentConfig;
  /** With --signed-requests, the headers that sign a request with the identity held now. */
  headers: (method: string, url: URL, body?: unknown) => Record<string, string>;
  /** The server set a heartbeat interval over the channel. */
  onSettings: (heartbeatIntervalSec: number) => void;
}

/**
 * The channel held open in the background and the command runner on it. Messages that come
 * before the runner is ready (the policy, sent first) wait for it.
 */
export async function linkCommands(
  deps: CommandLinkDeps,
): Promise<{ channel: AgentChannel; commands: AgentCommands }> {
  const { servers, log, signal, tls } = deps;
  let commands: AgentCommands | undefined;
  const early: ChannelDown[] = [];
  const channel = new AgentChannel(
    servers,
    channelTls(deps.identity(), deps.config),
    log,
    deps.onSettings,
    (message) => (commands ? commands.onMessage(message) : early.push(message)),
  );
  const started = await startCommands({
    identity: deps.identity,
    dataDir: deps.dataDir,
    log,
    signal,
    send: (message) => channel.send(message),
    request: async <T>(method: 'GET' | 'POST', path: string, body?: unknown) => {
      const url = new URL(path, servers.current());
      return (
        await requestJson<T>(url, {
          method,
          ...(body ? { body } : {}),
          headers: deps.headers(method, url, body || undefined),
          agent: tls(),
          signal,
        })
      ).body;
    },
  });
  commands = started;
  for (const message of early.splice(0)) started.onMessage(message);
  return { channel, commands: started };
}
