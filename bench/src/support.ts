import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { type Agent as HttpsAgent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair } from '@muster/host';
import { type EnrollResponse, type Heartbeat, MUSTER_VERSION } from '@muster/proto';
import pg from 'pg';

export const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));

/** Prints one figure as a JSON line on stdout: what `muster bench` promises. */
export function emit(
  scenario: string,
  figure: string,
  value: number,
  extra: Record<string, unknown> = {},
): void {
  process.stdout.write(
    `${JSON.stringify({ scenario, figure, value: Math.round(value * 100) / 100, ...extra })}\n`,
  );
}

/** Progress for a person watching; quiet when stderr is not a terminal. */
/** A process's resident memory, from /proc. */
export function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
}

export function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`${text}\n`);
}

export interface BenchServer {
  agentUrl: string;
  adminUrl: string;
  /** The admin token, for clients that fetch admin routes themselves. */
  adminToken: string;
  dataDir: string;
  /** The store the server runs on (a replica is started on the same one), for scenarios that seed it directly. */
  dbUrl: string;
  caPem: string;
  /** A TLS context trusting the fleet CA, shared by every simulated enrollment. */
  enrollContext: SecureContext;
  serverKeyPem: string;
  serverCertPem: string;
  admin<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** CPU seconds (user + system) the server process has used so far. */
  cpuSeconds(): number;
  pid: number;
  /** Heartbeats the server has answered over channels, from its /metrics. */
  heartbeatsByChannel(): Promise<number>;
  channelsHeld(): Promise<number>;
  stop(): Promise<void>;
}

/** /metrics, with the admin token: a scrape needs a credential like any admin route. */
export async function metricsText(adminUrl: string, token: string): Promise<string> {
  const res = await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET /metrics: ${res.status} ${await res.text()}`);
  return res.text();
}

/** Linux counts process CPU time in clock ticks of 1/100 s (USER_HZ) in /proc/PID/stat. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime
}

/**
 * A fresh PostgreSQL database beside the one named in `url`, so a benchmark never writes into
 * a database someone else uses; dropped when the run ends.
 */
export async function scratchDatabase(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `muster_bench_${randomBytes(6).toString('hex')}`;
  const run = async (statement: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  return { url: scratch.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * Starts `muster server` as its own process on loopback, as an operator would run it, on a
 * fresh SQLite file or, given `postgres://…`, on a fresh database in that PostgreSQL.
 */
export async function spawnServer(
  extraArgs: string[],
  db?: string,
  fdLimit?: number,
  /** Another replica of this one: the same data dir (so the same fleet CA) and the same database. */
  replicaOf?: BenchServer,
): Promise<BenchServer> {
  const dataDir = replicaOf?.dataDir ?? (await mkdtemp(join(tmpdir(), 'muster-bench-')));
  const scratch = db && !replicaOf ? await scratchDatabase(db) : undefined;
  const dbUrl = replicaOf ? replicaOf.dbUrl : scratch?.url;
  if (dbUrl) extraArgs = [...extraArgs, '--db', dbUrl];
  const child = spawnNode(
    [
      // e.g. MUSTER_BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server
      ...(process.env.MUSTER_BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      CLI,
      'server',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
      // Every simulated agent connects from 127.0.0.1: one source address holds the whole fleet,
      // and the scenarios measure how many the process itself can hold.
      '--max-connections',
      '1000000',
      '--max-connections-per-source',
      '1000000',
      '--admin-max-connections',
      '100000',
      '--admin-max-connections-per-source',
      '100000',
      ...extraArgs,
    ],
    fdLimit,
  );
  const urls = await new Promise<{ agent: string; admin: string }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const agent = /agent plane\s+(https:\/\/\S+)/.exec(out)?.[1];
      const admin = /admin API\s+(https?:\/\/\S+)/.exec(out)?.[1];
      if (agent && admin) resolve({ agent, admin });
    });
    child.once('exit', (code) => reject(new Error(`muster server exited with ${code} before it was ready`)));
  });
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  const caPem = await readFile(join(dataDir, 'ca.pem'), 'utf8');
  return {
    agentUrl: urls.agent,
    adminUrl: urls.admin,
    adminToken: token,
    dataDir,
    dbUrl: dbUrl ?? `sqlite:${join(dataDir, 'muster.db')}`,
    caPem,
    enrollContext: createSecureContext({ ca: caPem }),
    serverKeyPem: await readFile(join(dataDir, 'server.key'), 'utf8'),
    serverCertPem: await readFile(join(dataDir, 'server.pem'), 'utf8'),
    async admin<T>(method: string, path: string, body?: unknown) {
      const res = await fetch(`${urls.admin}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return (res.status === 204 ? undefined : await res.json()) as T;
    },
    cpuSeconds: () => processCpuSeconds(child.pid!),
    pid: child.pid!,
    heartbeatsByChannel: async () =>
      Number(
        /^muster_heartbeats_received_total\{transport="channel"\} (\d+)/m.exec(
          await metricsText(urls.admin, token),
        )?.[1] ?? 0,
      ),
    channelsHeld: async () =>
      Number(/^muster_channels_held (\d+)/m.exec(await metricsText(urls.admin, token))?.[1] ?? 0),
    async stop() {
      await stopChild(child);
      if (replicaOf) return; // the first replica owns the data dir and the database
      await scratch?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts `node ARGS…`, through a shell that raises the open-files limit first when asked:
 * tens of thousands of held connections need more descriptors than the default 20,000.
 */
export function spawnNode(args: readonly string[], fdLimit?: number): ChildProcess {
  if (!fdLimit) return spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const quoted = [process.execPath, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  // Where the hard limit cannot be raised (no CAP_SYS_RESOURCE), take the hard limit itself.
  const raise = `{ ulimit -n ${fdLimit} || ulimit -n "$(ulimit -Hn)"; } 2>/dev/null`;
  return spawn('bash', ['-c', `${raise}; exec ${quoted}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** A simulated agent's key and CSR, made before any clock starts. */
export interface Applicant {
  name: string;
  keyPem: string;
  csr: string;
}

export async function makeApplicants(count: number, prefix: string): Promise<Applicant[]> {
  const out: Applicant[] = [];
  const batch = 64;
  for (let i = 0; i < count; i += batch) {
    const made = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, async (_, j) => {
        const name = `${prefix}-${i + j}`;
        const keys = await generateKeyPair();
        return {
          name,
          keyPem: await exportPrivateKeyPem(keys.privateKey),
          csr: await createCsrPem(keys, name),
        };
      }),
    );
    out.push(...made);
    if ((i / batch) % 20 === 0) progress(`keys and CSRs: ${out.length}/${count}`);
  }
  return out;
}

export function facts(name: string) {
  return {
    hostname: name,
    os: 'linux',
    arch: 'x64',
    kernel: '6.1.0',
    cpus: 2,
    memoryBytes: 8 * 2 ** 30,
    agentVersion: MUSTER_VERSION,
  };
}

/** One POST over HTTPS; resolves with the status code and body. */
export function post(
  url: string,
  body: unknown,
  tls: { agent?: HttpsAgent; enrollContext?: SecureContext },
): Promise<{ status: number; body: string }> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ...(tls.agent
          ? { agent: tls.agent }
          : // One shared TLS context and no server-certificate check on the load generator: each
            // real agent pays for those on its own host, and here they would only measure the
            // load generator. The server does all of its own work.
            { agent: false, secureContext: tls.enrollContext, rejectUnauthorized: false }),
        headers: { 'content-type': 'application/json', 'content-length': String(payload.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export async function enroll(
  server: BenchServer,
  token: string,
  applicant: Applicant,
): Promise<EnrollResponse> {
  const res = await post(
    `${server.agentUrl}/v1/enroll`,
    { token, csr: applicant.csr, name: applicant.name, facts: facts(applicant.name) },
    { enrollContext: server.enrollContext },
  );
  if (res.status !== 201) throw new Error(`enroll ${applicant.name}: ${res.status} ${res.body}`);
  return JSON.parse(res.body) as EnrollResponse;
}

export function heartbeat(seq: number): Heartbeat {
  return {
    seq,
    sentAt: new Date().toISOString(),
    uptimeSec: 1000 + seq,
    load: [0.4, 0.3, 0.2],
    cpuPct: 7.5,
    memory: { totalBytes: 8 * 2 ** 30, availableBytes: 5 * 2 ** 30 },
    disks: [{ mount: '/', totalBytes: 100 * 2 ** 30, freeBytes: 40 * 2 ** 30 }],
    services: [{ name: 'sshd', active: true }],
    checks: [],
  };
}

/** Runs `fn` with at most `limit` calls in flight; returns how many failed and the first error. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  let failed = 0;
  let firstError: unknown;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed++;
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return { failed, firstError };
}
