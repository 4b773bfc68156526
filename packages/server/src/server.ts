import type { Logger } from 'pino';
import { buildApp, type MusterApp } from './app.js';
import { type Clock, type IdSource, randomIds, systemClock } from './clock.js';
import type { ServerConfig } from './config.js';
import { createLogger } from './logger.js';
import { prepareDataDir, type ServerIdentity, serverNames } from './pki/datadir.js';
import { openStore, type Store } from './store/db.js';

/** A running control plane. */
export interface RunningServer {
  readonly app: MusterApp;
  readonly identity: ServerIdentity;
  readonly store: Store;
  /** `https://host:port` of the agent plane as bound (the real port when 0 was asked for). */
  readonly agentUrl: string;
  /** `http(s)://host:port` of the admin plane as bound. */
  readonly adminUrl: string;
  stop(): Promise<void>;
}

/** Prepares the data dir, opens and migrates the store, and starts both listeners. */
export async function startServer(
  config: ServerConfig,
  opts: { clock?: Clock; ids?: IdSource; logger?: Logger } = {},
): Promise<RunningServer> {
  const clock = opts.clock ?? systemClock;
  const ids = opts.ids ?? randomIds;
  const logger = opts.logger ?? createLogger(config.logLevel);
  const identity = await prepareDataDir({
    dir: config.dataDir,
    trustDomain: config.trustDomain,
    sans: serverNames(config.listen.host, [
      ...config.sans,
      ...(config.publicUrl ? [new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, '')] : []),
    ]),
    ...(config.adminTokenFile ? { adminTokenFile: config.adminTokenFile } : {}),
    clock,
    ids,
  });
  const store = await openStore(config.db);
  let app: MusterApp | undefined;
  try {
    app = await buildApp({ config, store, identity, clock, ids, logger });
    await app.agent.listen({ host: config.listen.host, port: config.listen.port });
    await app.admin.listen({ host: config.adminListen.host, port: config.adminListen.port });
  } catch (err) {
    await app?.close().catch(() => {});
    await store.close().catch(() => {});
    throw err;
  }
  const running = app;
  const agentUrl = urlOf('https', running.agent);
  const adminUrl = urlOf(running.adminTls ? 'https' : 'http', running.admin);
  let stopping: Promise<void> | undefined;
  return {
    app: running,
    identity,
    store,
    agentUrl,
    adminUrl,
    stop() {
      stopping ??= (async () => {
        await running.close();
        await store.close();
      })();
      return stopping;
    },
  };
}

function urlOf(scheme: string, app: { server: { address(): unknown } }): string {
  const address = app.server.address() as { address: string; port: number; family: string };
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}
