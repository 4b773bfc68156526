import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair, type KeyPair } from '@muster/host';
import { type EnrollResponse, type Facts, MUSTER_VERSION } from '@muster/proto';
import pg from 'pg';
import { type Clock, ManualClock } from '../clock.js';
import { serverConfigFrom } from '../config.js';
import { createLogger } from '../logger.js';
import { type RunningServer, startServer } from '../server.js';
import { testCsr } from './pki.js';

/**
 * Test support: real servers on loopback over a real store, and real TLS clients.
 * Store tests loop over `dialects()`; PostgreSQL joins wherever MUSTER_TEST_PG_URL is set.
 */
export type Dialect = 'sqlite' | 'postgres';

export function dialects(): Dialect[] {
  return process.env.MUSTER_TEST_PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];
}

/** A fresh, empty PostgreSQL database for one test; dropping it is the caller's cleanup. */
export async function createPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.MUSTER_TEST_PG_URL;
  if (!base) throw new Error('MUSTER_TEST_PG_URL is not set');
  const name = `muster_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** What `JSON.parse` returns: tests read the fields they expect and assert on them. */
export type Json = ReturnType<typeof JSON.parse>;

export interface TestServer {
  server: RunningServer;
  clock: ManualClock;
  dataDir: string;
  /** The store URL, so a second replica can share it. */
  db: string;
  /** Calls the admin API with the admin token. */
  admin(method: string, path: string, body?: unknown): Promise<HttpsResult>;
  close(): Promise<void>;
}

/**
 * Starts a real server on loopback ports chosen by the OS. The clock starts at the real time
 * (TLS checks certificates against the real clock) and tests move it forward by hand.
 */
export async function startTestServer(
  dialect: Dialect,
  opts: {
    settings?: Record<string, string | boolean | string[]>;
    /** Share a store with another test server: two replicas of one control plane. */
    db?: string;
    /** Share a data dir (fleet CA, admin token) with another test server; it stays that server's to remove. */
    dataDir?: string;
    clock?: ManualClock;
  } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'muster-test-')));
  let pgDb: { url: string; drop(): Promise<void> } | undefined;
  let db = opts.db;
  if (!db) {
    if (dialect === 'postgres') {
      pgDb = await createPgDatabase();
      db = pgDb.url;
    } else db = `sqlite:${join(dataDir, 'muster.db')}`;
  }
  const clock = opts.clock ?? new ManualClock(Date.now());
  const config = serverConfigFrom({
    'data-dir': dataDir,
    listen: '127.0.0.1:0',
    'admin-listen': '127.0.0.1:0',
    db,
    'enroll-rate': '10000',
    // Tests send heartbeats back to back on a clock that stands still; throttling has its own tests.
    'heartbeat-burst': '100000',
    ...opts.settings,
  });
  const server = await startServer(config, {
    clock,
    logger: createLogger(process.env.MUSTER_TEST_LOG === '1' ? 'debug' : 'silent'),
  });
  const token = server.identity.adminToken;
  return {
    server,
    clock,
    dataDir,
    db,
    async admin(method, path, body) {
      const res = await server.app.admin.inject({
        method: method as 'GET',
        url: path,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { payload: body as object }),
      });
      let json: unknown;
      try {
        json = res.body ? JSON.parse(res.body) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.statusCode, json, body: res.body, headers: res.headers as HttpsResult['headers'] };
    },
    async close() {
      await server.stop();
      await pgDb?.drop();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export const testFacts = (hostname = 'test-host'): Facts => ({
  hostname,
  os: 'linux',
  arch: 'x64',
  kernel: '6.1.0',
  cpus: 2,
  memoryBytes: 8 * 2 ** 30,
  agentVersion: MUSTER_VERSION,
});

export interface HttpsResult {
  status: number;
  json: Json;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

interface RequestOptions {
  method?: string;
  body?: unknown;
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  /** Send the body with chunked transfer encoding, without a content-length. */
  chunked?: boolean;
}

/** One HTTPS request with explicit TLS material; never throws on an HTTP error status. */
export function httpsJson(
  url: string,
  opts: RequestOptions & { ca?: string; key?: string; cert?: string; agent?: HttpsAgent } = {},
): Promise<HttpsResult> {
  const { ca, key, cert, agent, ...rest } = opts;
  return send(rest, (requestOpts, onResponse) =>
    httpsRequest(
      url,
      { ...requestOpts, ...(agent ? { agent } : { agent: false, ca, key, cert }) },
      onResponse,
    ),
  );
}

/** One plain HTTP request (the admin plane on loopback); never throws on an HTTP error status. */
export function httpJson(url: string, opts: RequestOptions = {}): Promise<HttpsResult> {
  return send(opts, (requestOpts, onResponse) =>
    httpRequest(url, { ...requestOpts, agent: false }, onResponse),
  );
}

function send(
  opts: RequestOptions,
  open: (
    requestOpts: { method: string; headers: Record<string, string> },
    onResponse: (res: IncomingMessage) => void,
  ) => ClientRequest,
): Promise<HttpsResult> {
  const payload =
    opts.rawBody !== undefined
      ? Buffer.from(opts.rawBody)
      : opts.body === undefined
        ? undefined
        : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = open(
      {
        method: opts.method ?? (payload ? 'POST' : 'GET'),
        headers: {
          ...(payload ? { 'content-type': 'application/json' } : {}),
          ...(payload && !opts.chunked ? { 'content-length': String(payload.length) } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = body ? JSON.parse(body) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, body, headers: res.headers });
        });
      },
    );
    // A server that answers before reading the whole body (413) may close while we still write.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (payload && opts.chunked) {
      for (let at = 0; at < payload.length; at += 65_536) req.write(payload.subarray(at, at + 65_536));
      req.end();
    } else req.end(payload);
  });
}

/** A simulated agent: its own key, enrolled through the real API, holding a real mTLS identity. */
export interface TestAgent {
  nodeId: string;
  name: string;
  keys: KeyPair;
  keyPem: string;
  certPem: string;
  caPem: string;
  /** A keep-alive agent that presents the node's certificate. */
  agent: HttpsAgent;
  /** Every TLS connection the agent opened, oldest first. */
  sockets: TLSSocket[];
  heartbeat(body?: Record<string, unknown>, seq?: number): Promise<HttpsResult>;
}

export async function createToken(t: TestServer, body: Record<string, unknown> = {}): Promise<string> {
  const res = await t.admin('POST', '/v1/tokens', body);
  if (res.status !== 201) throw new Error(`token create failed: ${res.status} ${res.body}`);
  return res.json.secret as string;
}

/**
 * Posts an enrollment as an agent would and returns the raw answer, for tests that expect a
 * refusal. Without a `csr`, one is made for a fresh key.
 */
export async function postEnroll(
  t: TestServer,
  fields: { token: string; name?: string; csr?: string } & Record<string, unknown>,
): Promise<HttpsResult> {
  const name = fields.name ?? `node-${randomBytes(4).toString('hex')}`;
  const csr = fields.csr ?? (await testCsr());
  return httpsJson(`${t.server.agentUrl}/v1/enroll`, {
    body: { facts: testFacts(), ...fields, name, csr },
    ca: t.server.identity.ca.pem,
  });
}

export async function enrollAgent(
  t: TestServer,
  opts: { name?: string; token?: string } = {},
): Promise<TestAgent> {
  const keys = await generateKeyPair();
  const name = opts.name ?? `node-${randomBytes(4).toString('hex')}`;
  const token = opts.token ?? (await createToken(t));
  const caPem = t.server.identity.ca.pem;
  const res = await httpsJson(`${t.server.agentUrl}/v1/enroll`, {
    body: { token, csr: await createCsrPem(keys, name), name, facts: testFacts(name) },
    ca: caPem,
  });
  if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${res.body}`);
  const enrolled = res.json as EnrollResponse;
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  const agent = new HttpsAgent({
    keepAlive: true,
    maxSockets: 1,
    key: keyPem,
    cert: enrolled.certificate,
    ca: caPem,
  });
  const sockets: TLSSocket[] = [];
  const open = agent.createConnection.bind(agent);
  agent.createConnection = (...args: Parameters<typeof open>) => {
    const socket = open(...args);
    sockets.push(socket as unknown as TLSSocket);
    return socket;
  };
  let seq = 0;
  return {
    nodeId: enrolled.nodeId,
    name: enrolled.name,
    keys,
    keyPem,
    certPem: enrolled.certificate,
    caPem,
    agent,
    sockets,
    heartbeat: (body, s) =>
      httpsJson(`${t.server.agentUrl}/v1/agent/heartbeat`, {
        body: body ?? sampleHeartbeat(s ?? seq++),
        agent,
      }),
  };
}

export function sampleHeartbeat(seq = 0, now: Clock = { now: () => Date.now() }) {
  return {
    seq,
    sentAt: new Date(now.now()).toISOString(),
    uptimeSec: 1234,
    load: [0.5, 0.4, 0.3],
    cpuPct: 12.5,
    memory: { totalBytes: 8 * 2 ** 30, availableBytes: 6 * 2 ** 30 },
    disks: [{ mount: '/', totalBytes: 100 * 2 ** 30, freeBytes: 60 * 2 ** 30 }],
    services: [{ name: 'sshd', active: true }],
    checks: [],
  };
}

/**
 * The decisions the ledger holds about one subject (`node:<id>`, `token:<id>`), oldest first,
 * read through the admin API as an operator would.
 */
export async function decisionsAbout(
  t: TestServer,
  subject: string,
): Promise<Array<{ seq: number; kind: string; actor: string; data: Record<string, unknown> }>> {
  const res = await t.admin('GET', `/v1/ledger/decisions?subject=${encodeURIComponent(subject)}&limit=1000`);
  if (res.status !== 200) throw new Error(`ledger decisions: ${res.status} ${res.body}`);
  return [...res.json.items].reverse();
}

/**
 * Two replicas of one control plane: servers sharing a store, a data dir (fleet CA, admin
 * token) and a clock. `close` stops the second, then the first, which owns the store and dir.
 */
export async function startReplicas(
  dialect: Dialect,
  settings?: Record<string, string | boolean | string[]>,
): Promise<{ a: TestServer; b: TestServer; close(): Promise<void> }> {
  const a = await startTestServer(dialect, { settings });
  const b = await startTestServer(dialect, { db: a.db, dataDir: a.dataDir, clock: a.clock, settings });
  return {
    a,
    b,
    async close() {
      await b.close();
      await a.close();
    },
  };
}
