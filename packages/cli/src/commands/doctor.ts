import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, statfs } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { connect } from 'node:tls';
import { AGENT_SETTINGS } from '@muster/agent';
import { type RawSettings, type SettingSpec, UsageError } from '@muster/host';
import type { Command } from '../command.js';
import {
  agentChecks,
  agentServerUrls,
  type Check,
  certificateExpiry,
  DOCTOR_SERVER_SETTING,
  type Finding,
  fail,
  filesLike,
  pass,
  privateDir,
  privateFiles,
  runChecks,
  span,
} from './doctor-agent.js';
import { loadServer } from './server.js';

const DAY_MS = 86_400_000;
/** Rotating the fleet CA takes an overlap of a node certificate lifetime or more: warn early. */
const CA_MIN_LEFT_MS = 30 * DAY_MS;
/** The server renews its own certificate with a third of its 30 days left; under a week it did not. */
const SERVER_CERT_MIN_LEFT_MS = 7 * DAY_MS;
/** Below this the store cannot be trusted to grow its write-ahead log. */
const MIN_FREE_BYTES = 256 * 1024 * 1024;
const SERVER_FLAGS = new Set(['data-dir', 'db', 'listen', 'admin-listen', 'admin-token-file']);

interface HostPort {
  host: string;
  port: number;
}

/** Tries to bind; when something holds the port, asks `whoHolds` whether it is this Muster server. */
function portCheck(
  label: string,
  flag: string,
  at: HostPort,
  whoHolds: () => Promise<string | undefined>,
): Check {
  const where = `${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
  return async () => {
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const probe = createServer();
      probe.once('error', (err) => resolve(err));
      probe.listen({ host: at.host, port: at.port, exclusive: true }, () =>
        probe.close(() => resolve(undefined)),
      );
    });
    if (!error) return pass(`${label} ${where} is free to bind`);
    if (error.code === 'EADDRINUSE') {
      const holder = await whoHolds().catch(() => undefined);
      return holder
        ? pass(`${label} ${where} is held by ${holder}`)
        : fail(`${label} ${where} is in use by another program`, `stop it, or give --${flag} another port`);
    }
    if (error.code === 'EACCES')
      return fail(
        `${label} ${where} cannot be bound: permission denied`,
        'use a port above 1023, or grant CAP_NET_BIND_SERVICE',
      );
    if (error.code === 'EADDRNOTAVAIL')
      return fail(
        `${label} ${where}: this host has no address ${at.host}`,
        `give --${flag} an address of this host`,
      );
    return fail(`${label} ${where} cannot be bound (${error.message})`, `give --${flag} another address`);
  };
}

const dialable = (host: string) =>
  host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;

/** Whether whatever listens there presents a certificate issued by this data dir's CA. */
function agentPlaneHolder(at: HostPort, caPem: string): Promise<string | undefined> {
  const ca = new X509Certificate(caPem);
  return new Promise((resolve) => {
    const socket = connect({
      host: dialable(at.host),
      port: at.port,
      rejectUnauthorized: false,
      timeout: 5000,
    });
    const done = (who: string | undefined) => {
      socket.destroy();
      resolve(who);
    };
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate().raw;
      const leaf = raw ? new X509Certificate(raw) : undefined;
      done(leaf?.checkIssued(ca) && leaf.verify(ca.publicKey) ? "this data dir's muster server" : undefined);
    });
    socket.once('timeout', () => done(undefined));
    socket.once('error', () => done(undefined));
  });
}

/** Whether a Muster admin plane answers /healthz there (HTTP on loopback, HTTPS off it). */
async function adminPlaneHolder(at: HostPort): Promise<string | undefined> {
  for (const [scheme, request] of [
    ['http', httpRequest],
    ['https', httpsRequest],
  ] as const) {
    const host = dialable(at.host);
    const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${at.port}/healthz`;
    const body = await new Promise<string | undefined>((resolve) => {
      const req = request(url, { timeout: 5000, rejectUnauthorized: false, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve(res.statusCode === 200 ? text : undefined));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(undefined));
      req.end();
    });
    if (body && /"status"\s*:\s*"ok"/.test(body)) return 'a running muster server (/healthz ok)';
  }
  return undefined;
}

async function storeCheck(db: string, dataDir: string): Promise<Finding> {
  const sqlitePath = db.startsWith('sqlite:') ? db.slice('sqlite:'.length) : undefined;
  const shown = sqlitePath ? db : `postgres store ${new URL(db).host}${new URL(db).pathname}`;
  if (sqlitePath && !existsSync(sqlitePath))
    return fail(
      `no store at ${sqlitePath}`,
      `start muster server once with --data-dir ${dataDir}, or give --db`,
    );
  const { openStore } = await loadServer();
  try {
    const store = await openStore(db);
    try {
      await store.ping();
    } finally {
      await store.close();
    }
  } catch (err) {
    return fail(
      `${shown} does not open (${(err as Error).message})`,
      'check --db, and that the database runs',
    );
  }
  return pass(`${shown} opens and answers`);
}

async function diskCheck(dataDir: string): Promise<Finding> {
  const s = await statfs(dataDir);
  const free = s.bavail * s.bsize;
  const pct = s.blocks > 0 ? Math.round((100 * s.bavail) / s.blocks) : 0;
  const what = `${Math.round(free / 1048576)} MiB (${pct} %) free on the file system of ${dataDir}`;
  return free < MIN_FREE_BYTES
    ? fail(what, 'free some space there: the store needs room to write')
    : pass(what);
}

/** The checks for a server host, with `muster server`'s settings. */
async function serverHostChecks(values: RawSettings): Promise<Check[]> {
  const { serverConfigFrom, dataDirPaths } = await loadServer();
  const config = serverConfigFrom(values);
  const paths = dataDirPaths(config.dataDir);
  const start = `start muster server once with --data-dir ${config.dataDir}: it makes the fleet CA and its keys`;
  return [
    () => privateDir(config.dataDir, 'data dir', start),
    async () =>
      privateFiles([
        { path: paths.caKey, required: start },
        { path: paths.serverKey, required: start },
        { path: config.adminTokenFile ?? paths.adminToken, required: start },
        { path: paths.ledgerKey },
        { path: join(config.dataDir, 'root.key') },
        ...(await filesLike(config.dataDir, /^ca-.+\.key$/)).map((path) => ({ path })),
      ]),
    () => storeCheck(config.db, config.dataDir),
    async () => [
      await certificateExpiry(
        'fleet CA',
        paths.caCert,
        CA_MIN_LEFT_MS,
        'rotate it: muster ca rotate, then muster ca finish',
      ),
      ...(await Promise.all(
        (
          await filesLike(config.dataDir, /^ca-.+\.pem$/)
        ).map((path) =>
          certificateExpiry(
            `new fleet CA ${path}`,
            path,
            CA_MIN_LEFT_MS,
            'finish the rotation: muster ca finish',
          ),
        ),
      )),
    ],
    () =>
      certificateExpiry(
        'server certificate',
        paths.serverCert,
        SERVER_CERT_MIN_LEFT_MS,
        `restart muster server: it renews its certificate when ${span(10 * DAY_MS)} are left`,
      ),
    () => diskCheck(config.dataDir),
    portCheck('agent plane', 'listen', config.listen, async () =>
      agentPlaneHolder(config.listen, await readFile(paths.caCert, 'utf8')),
    ),
    portCheck('admin API', 'admin-listen', config.adminListen, () => adminPlaneHolder(config.adminListen)),
  ];
}

/** `--agent-data-dir`: the agent's `--data-dir`, under a name of its own beside the server's. */
// Without the agent's default: given no --agent-data-dir, the doctor checks no agent.
const { default: _agentDefault, ...agentDataDir } = AGENT_SETTINGS.find((s) => s.flag === 'data-dir')!;
const AGENT_DATA_DIR: SettingSpec = {
  ...agentDataDir,
  flag: 'agent-data-dir',
  help: "an agent's data dir: check this host as an agent host (with --data-dir too: as both)",
};

export const doctorCommand: Command = {
  path: ['doctor'],
  summary: 'check this host: modes, store, certificates, disk, ports; or, as an agent, its servers and clock',
  details:
    'One line per check, ok or FAIL with what to do; exit 1 naming the first thing to fix.\n' +
    'A server host: the same flags and MUSTER_* variables as muster server (--data-dir, --db,\n' +
    '--listen, --admin-listen), or its config file (--config /etc/muster/server.toml; the keys\n' +
    'the doctor does not check are ignored). An agent host: --agent-data-dir DIR [--server URL].',
  settings: async () => {
    const agent = [AGENT_DATA_DIR, DOCTOR_SERVER_SETTING];
    try {
      const { SERVER_COMMAND_SETTINGS, SERVER_SETTINGS } = await loadServer();
      // The server's own config file, read as the server reads it: what the doctor does not
      // check is ignored, an unknown key is refused as the server would refuse it.
      const config = SERVER_COMMAND_SETTINGS.find((s) => s.flag === 'config')!;
      return [
        { ...config, fileSettings: SERVER_SETTINGS },
        ...SERVER_SETTINGS.filter((s) => SERVER_FLAGS.has(s.flag)),
        ...agent,
      ];
    } catch {
      return agent; // an agent-only install: the agent checks still work
    }
  },
  async run({ values }) {
    const agentDir = values['agent-data-dir'] as string | undefined;
    if (values.server !== undefined && agentDir === undefined)
      throw new UsageError('--server checks an agent host: give --agent-data-dir too');
    const asServer = values['data-dir'] !== undefined || agentDir === undefined;
    return runChecks([
      ...(asServer ? await serverHostChecks(values) : []),
      ...(agentDir ? agentChecks(resolve(agentDir), agentServerUrls(values.server)) : []),
    ]);
  },
};
