import { X509Certificate } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { buildApp, type MusterApp } from './app.js';
import { type Clock, type IdSource, randomIds, systemClock } from './clock.js';
import type { ServerConfig } from './config.js';
import { listenForMetrics } from './features/metrics/listener.js';
import { createLogger } from './logger.js';
import {
  openDataDir,
  prepareDataDir,
  type RotationOnRecord,
  type ServerIdentity,
  serverNames,
  trustFilesOutside,
} from './pki/datadir.js';
import { ServerIdentityRenewer } from './pki/server-identity.js';
import { openStore, type Store } from './store/db.js';

/** What the shared store says about a fleet CA rotation. */
async function rotationOnRecord(store: Store): Promise<RotationOnRecord> {
  const row = await store.db
    .selectFrom('ca_rotation')
    .select(['state', 'new_serial'])
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
  return { state: row.state, newSerial: row.new_serial };
}

/** A running control plane. */
export interface RunningServer {
  readonly app: MusterApp;
  readonly identity: ServerIdentity;
  readonly store: Store;
  /** `https://host:port` of the agent plane as bound (the real port when 0 was asked for). */
  readonly agentUrl: string;
  /** `http(s)://host:port` of the admin plane as bound. */
  readonly adminUrl: string;
  /** signed-requests: `http://host:port` of the `--proxied-listen` listener as bound, when there is one. */
  readonly proxiedUrl?: string;
  /** `http://host:port` of the `--metrics-listen` listener as bound, when there is one. */
  readonly metricsUrl?: string;
  /**
   * A one-time link that signs a browser in to the console: the code rides in the URL's
   * fragment, which browsers send to no server and write to no log.
   */
  signInLink(): Promise<string>;
  /** Renews the server's own TLS certificate now if it is due (a timer also does, hourly). */
  renewServerIdentity(): Promise<boolean>;
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
  const sans = serverNames(config.listen.host, [
    ...config.sans,
    ...(config.publicUrl ? [new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, '')] : []),
  ]);
  // The store first: whether a CA rotation is under way decides what the data dir must hold.
  // But only in a data dir no other local user can change, which also holds the default store.
  await openDataDir(config.dataDir, trustFilesOutside(config));
  const store = await openStore(config.db, { logger, clock });
  let app: MusterApp | undefined;
  let metricsServer: HttpServer | undefined;
  let identity: ServerIdentity;
  let renewer: ServerIdentityRenewer;
  try {
    identity = await prepareDataDir({
      dir: config.dataDir,
      trustDomain: config.trustDomain,
      sans,
      ...(config.adminTokenFile ? { adminTokenFile: config.adminTokenFile } : {}),
      ...(config.fleetRoot ? { fleetRoot: config.fleetRoot } : {}),
      clock,
      ids,
      rotation: await rotationOnRecord(store),
    });
    if (identity.fleetRoot.keyInDataDir)
      logger.warn(
        { file: join(config.dataDir, 'root.key') },
        'the fleet root private key is in the data dir: fine for a trial; in production keep it offline ("muster root init --out FILE" on another machine, then --fleet-root)',
      );
    renewer = new ServerIdentityRenewer({
      identity,
      sans,
      clock,
      ids,
      apply: () => app?.applyServerIdentity(),
    });
    const check = renewer.check.bind(renewer);
    app = await buildApp({ config, store, identity, clock, ids, logger, renewServerIdentity: check });
    await app.agent.listen({ host: config.listen.host, port: config.listen.port });
    await app.admin.listen({ host: config.adminListen.host, port: config.adminListen.port });
    if (app.proxied && config.proxiedListen) {
      // signed-requests: the plain-HTTP agent plane for a TLS-terminating proxy (CONTRACT section 12).
      const { server } = app.proxied;
      const { host, port } = config.proxiedListen;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      logger.info(
        { url: urlOf('http', app.proxied), trustedProxies: config.trustedProxies },
        'serving signed agent requests from the trusted proxies (--proxied-listen)',
      );
    }
    if (config.metricsListen) {
      metricsServer = await listenForMetrics(
        config.metricsListen,
        app.metrics,
        config.connections.handshakeTimeoutMs,
      );
      logger.info(
        { url: `${urlOf('http', { server: metricsServer })}/metrics` },
        'serving /metrics without a credential (--metrics-listen)',
      );
    }
  } catch (err) {
    metricsServer?.close();
    // The start's own failure is what is thrown; one in cleaning up after it is said, not lost.
    const cleanup = (err: unknown) => logger.warn({ err }, 'could not close after a failed start');
    await app?.close().catch(cleanup);
    await store.close().catch(cleanup);
    throw err;
  }
  const running = app;
  const background = new AbortController();
  renewer.start(
    3_600_000,
    background.signal,
    (err) => logger.error({ err }, 'could not renew the server TLS certificate'),
    () =>
      logger.info(
        { notAfter: new X509Certificate(identity.serverCertPem).validTo },
        'renewed the server TLS certificate',
      ),
  );
  let stopping: Promise<void> | undefined;
  const adminUrl = urlOf(running.adminTls ? 'https' : 'http', running.admin);
  return {
    app: running,
    identity,
    store,
    agentUrl: urlOf('https', running.agent),
    adminUrl,
    ...(metricsServer ? { metricsUrl: urlOf('http', { server: metricsServer }) } : {}),
    ...(running.proxied ? { proxiedUrl: urlOf('http', running.proxied) } : {}), // signed-requests
    renewServerIdentity: () => renewer.check(),
    async signInLink() {
      const { code } = await running.sessions.issueCode();
      return `${adminUrl.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:')}/#code=${code}`;
    },
    stop() {
      background.abort();
      stopping ??= (async () => {
        metricsServer?.closeAllConnections();
        metricsServer?.close();
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
