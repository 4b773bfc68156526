import type { AgentConfig, AgentOptions, StoredIdentity } from '@muster/agent';
import { runAgent } from '@muster/agent';
import type { Log } from '@muster/host';
import { type HeartbeatAck, keyFingerprint } from '@muster/proto';
import { type Clock, createLogger, type RunningServer, serverConfigFrom, startServer } from '@muster/server';
import type { Sandbox } from './sandbox.js';

/** What `JSON.parse` returns: tests read the fields they expect and assert on them. */
export type Json = ReturnType<typeof JSON.parse>;

/**
 * A control plane and agents in this process, over real TLS on loopback: for agent behaviour
 * that needs an injected clock (renewal, skew), which a child process cannot be given.
 */
export interface InProcessServer {
  server: RunningServer & { rootPin: string };
  /** The store and data dir, for a second replica to share. */
  db: string;
  dataDir: string;
  admin(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: object,
  ): Promise<{ status: number; json: Json }>;
  close(): Promise<void>;
}

export async function startInProcessServer(
  sandbox: Sandbox,
  dialect: 'sqlite' | 'postgres',
  settings: Record<string, string> = {},
  clock?: Clock,
  /** Another replica's store and data dir: the two are one control plane (PostgreSQL). */
  replicaOf?: Pick<InProcessServer, 'db' | 'dataDir'>,
): Promise<InProcessServer> {
  const dataDir = replicaOf?.dataDir ?? sandbox.tempDir('server');
  const db =
    replicaOf?.db ??
    (dialect === 'postgres' ? await sandbox.postgresDatabase() : `sqlite:${dataDir}/muster.db`);
  const config = serverConfigFrom({
    'data-dir': dataDir,
    listen: '127.0.0.1:0',
    'admin-listen': '127.0.0.1:0',
    db,
    'enroll-rate': '10000',
    ...settings,
  });
  const server = await startServer(config, { logger: createLogger('silent'), ...(clock ? { clock } : {}) });
  const token = server.identity.adminToken;
  return {
    // The --root-pin of this server's join lines, for agents started without one.
    server: Object.assign(server, { rootPin: keyFingerprint(server.identity.fleetRoot.publicKey) }),
    db,
    dataDir,
    async admin(method, path, body) {
      const res = await server.app.admin.inject({
        method,
        url: path,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { payload: body }),
      });
      return { status: res.statusCode, json: res.body ? JSON.parse(res.body) : undefined };
    },
    close: () => server.stop(),
  };
}

/** What an in-process agent did, as its hooks and its log saw it. */
export interface AgentRun {
  dataDir: string;
  enrolled: StoredIdentity[];
  renewed: StoredIdentity[];
  acks: HeartbeatAck[];
  logs: Array<{
    level: 'error' | 'warn' | 'info' | 'debug';
    msg: string;
    /** Date.now() when it was logged. */
    at: number;
    fields?: Record<string, unknown>;
  }>;
  /** Resolves when runAgent returned; rejects with what it threw. */
  done: Promise<void>;
  stop(): Promise<void>;
}

export function startAgent(
  sandbox: Sandbox,
  overrides: Partial<AgentConfig> & Pick<AgentConfig, 'server' | 'caPin'>,
  options: AgentOptions = {},
  dataDir = sandbox.tempDir('agent'),
): AgentRun {
  const run: Omit<AgentRun, 'done' | 'stop'> = { dataDir, enrolled: [], renewed: [], acks: [], logs: [] };
  const entry =
    (level: AgentRun['logs'][number]['level']) => (msg: string, fields?: Record<string, unknown>) =>
      run.logs.push({ level, msg, at: Date.now(), ...(fields ? { fields } : {}) });
  const log: Log = { error: entry('error'), warn: entry('warn'), info: entry('info'), debug: entry('debug') };
  const config: AgentConfig = {
    dataDir,
    labels: {},
    services: [],
    logLevel: 'debug',
    renewFraction: 0.67,
    rekey: false,
    ...overrides,
  };
  const abort = new AbortController();
  const done = runAgent(
    config,
    log,
    abort.signal,
    {
      onEnrolled: (id) => run.enrolled.push(id),
      onRenewed: (id) => run.renewed.push(id),
      onHeartbeat: (ack) => run.acks.push(ack),
    },
    options,
  );
  return {
    ...run,
    done,
    async stop() {
      abort.abort();
      await done;
    },
  };
}
