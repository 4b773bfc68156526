import { spawn } from 'node:child_process';
import { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeLoopbackPort, signedClient, signedClosedLoop } from './signed-heartbeat.js';
import {
  type BenchServer,
  emit,
  enroll,
  heartbeat,
  makeApplicants,
  post,
  progress,
  spawnServer,
  stopChild,
} from './support.js';

export interface HeartbeatOptions {
  agents: number;
  durationMs: number;
  db?: string;
  /** 2: also measure two replicas on the same PostgreSQL database, the agents split between them. */
  replicas?: number;
  /** Also measure signed requests (RFC 9421) on --proxied-listen beside mTLS, same run. */
  signedRequests?: boolean;
}

// A closed loop sends far faster than any interval: the heartbeat throttle is lifted, not skipped.
const SERVER_ARGS = ['--enroll-rate', '100000', '--heartbeat-burst', '1000000000'];

interface Client {
  agent: HttpsAgent;
  certificate: string;
}

/**
 * N simulated agents, each with its own certificate and one kept-alive mTLS connection, send
 * heartbeats in a closed loop. The same clients then load a bare HTTPS server that answers 204.
 */
export async function heartbeatScenario(opts: HeartbeatOptions): Promise<void> {
  const proxiedPort = opts.signedRequests ? await freeLoopbackPort() : 0;
  const proxied = opts.signedRequests
    ? ['--proxied-listen', `127.0.0.1:${proxiedPort}`, '--trusted-proxy', '127.0.0.1']
    : [];
  const server = await spawnServer([...SERVER_ARGS, ...proxied], opts.db);
  try {
    progress(`enrolling ${opts.agents} agents (enrollment rate limit raised for this run)`);
    const { secret } = await server.admin<{ secret: string }>('POST', '/v1/tokens', {
      uses: opts.agents,
      ttlSec: 3600,
    });
    const applicants = await makeApplicants(opts.agents, 'hb');
    const clients: Client[] = [];
    for (const applicant of applicants) {
      const enrolled = await enroll(server, secret, applicant);
      clients.push({
        agent: new HttpsAgent({
          keepAlive: true,
          maxSockets: 1,
          key: applicant.keyPem,
          cert: enrolled.certificate,
          ca: server.caPem,
        }),
        certificate: enrolled.certificate,
      });
    }

    progress(`heartbeats: ${opts.agents} agents for ${opts.durationMs / 1000} s against muster server`);
    const cpuBefore = server.cpuSeconds();
    const muster = await closedLoop(clients, `${server.agentUrl}/v1/agent/heartbeat`, 202, opts.durationMs);
    const serverCpuUs = ((server.cpuSeconds() - cpuBefore) * 1e6) / Math.max(1, muster.total);
    for (const c of clients) c.agent.destroy();
    const replicated = (opts.replicas ?? 1) > 1 ? await twoReplicas(server, clients, opts) : undefined;
    const signed = opts.signedRequests ? await signedRun(clients, proxiedPort, opts.durationMs) : undefined;

    const bare = spawn(
      process.execPath,
      [
        fileURLToPath(new URL('./bare-server.js', import.meta.url)),
        join(server.dataDir, 'server.key'),
        join(server.dataDir, 'server.pem'),
        join(server.dataDir, 'ca.pem'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const bareUrl = await new Promise<string>((resolve, reject) => {
      bare.stdout!.once('data', (chunk: Buffer) => resolve(/listening (\S+)/.exec(chunk.toString())![1]!));
      bare.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
    });
    const bareClients = clients.map((c) => ({
      agent: new HttpsAgent({ keepAlive: true, maxSockets: 1, ...tlsOf(c.agent) }),
      certificate: c.certificate,
    }));
    progress(
      `heartbeats: the same agents for ${opts.durationMs / 1000} s against a bare HTTPS server answering 204`,
    );
    const baseline = await closedLoop(bareClients, `${bareUrl}/v1/agent/heartbeat`, 204, opts.durationMs);
    for (const c of bareClients) c.agent.destroy();
    await stopChild(bare);

    const common = {
      agents: opts.agents,
      durationSec: opts.durationMs / 1000,
      store: opts.db ? 'postgres' : 'sqlite',
    };
    const one = replicated ? { replicas: 1 } : {};
    emit('heartbeat', 'heartbeats_per_sec', muster.rate, {
      ...common,
      ...one,
      failed: muster.failed,
      unit: 'heartbeats/s, each committed before the 202',
    });
    emit('heartbeat', 'bare_https_204_per_sec', baseline.rate, {
      ...common,
      failed: baseline.failed,
      unit: 'requests/s, same clients and TLS settings',
    });
    emit('heartbeat', 'server_cpu_us_per_heartbeat', serverCpuUs, {
      ...one,
      note: 'server process only: TLS, identity check against the store, validation, group commit',
    });
    emit('heartbeat', 'ratio_to_bare', muster.rate / baseline.rate, { goal: '>= 0.5' });
    if (replicated) {
      const two = { ...common, replicas: 2 };
      emit('heartbeat', 'heartbeats_per_sec', replicated.rate, {
        ...two,
        failed: replicated.failed,
        unit: 'heartbeats/s, the agents split evenly over two replicas on one database',
      });
      emit('heartbeat', 'server_cpu_us_per_heartbeat', replicated.cpuUs, {
        replicas: 2,
        note: 'both server processes together, per heartbeat',
      });
      emit('heartbeat', 'replica_ratio', replicated.rate / muster.rate, {
        note: 'two replicas over one, same run; on a machine with fewer cores than replicas need, < 2 is expected',
      });
    }
    emit('heartbeat', 'agents_carried_at_10s_interval', muster.rate * 10, { unit: 'agents' });
    if (signed) {
      emit('heartbeat', 'signed_heartbeats_per_sec', signed.rate, {
        ...common,
        failed: signed.failed,
        unit: 'heartbeats/s, RFC 9421 signed, plain HTTP to --proxied-listen (no proxy in between)',
      });
      emit('heartbeat', 'signed_ratio_to_mtls', signed.rate / muster.rate, { goal: '>= 0.7' });
    }
  } finally {
    await server.stop();
  }
}

/** The same agents, half to the first replica and half to a second one on the same database. */
async function twoReplicas(first: BenchServer, clients: Client[], opts: HeartbeatOptions) {
  const second = await spawnServer(SERVER_ARGS, opts.db, undefined, first);
  try {
    const split = clients.map((c) => ({
      agent: new HttpsAgent({ keepAlive: true, maxSockets: 1, ...tlsOf(c.agent) }),
      certificate: c.certificate,
    }));
    const half = Math.ceil(split.length / 2);
    progress(`heartbeats: the same agents for ${opts.durationMs / 1000} s, split over two replicas`);
    const cpuBefore = first.cpuSeconds() + second.cpuSeconds();
    const [a, b] = await Promise.all([
      closedLoop(split.slice(0, half), `${first.agentUrl}/v1/agent/heartbeat`, 202, opts.durationMs),
      closedLoop(split.slice(half), `${second.agentUrl}/v1/agent/heartbeat`, 202, opts.durationMs),
    ]);
    const cpu = first.cpuSeconds() + second.cpuSeconds() - cpuBefore;
    for (const c of split) c.agent.destroy();
    return {
      rate: a.rate + b.rate,
      failed: a.failed + b.failed,
      cpuUs: (cpu * 1e6) / Math.max(1, a.total + b.total),
    };
  } finally {
    await second.stop();
  }
}

/** The same agents, signing each heartbeat, on --proxied-listen as a TLS proxy would forward them. */
async function signedRun(clients: Client[], port: number, durationMs: number) {
  const signers = clients.map((c) => signedClient(tlsOf(c.agent).key, c.certificate));
  progress(`heartbeats: the same agents for ${durationMs / 1000} s signed (RFC 9421) on --proxied-listen`);
  const result = await signedClosedLoop(signers, `http://127.0.0.1:${port}`, durationMs);
  for (const s of signers) s.agent.destroy();
  return result;
}

function tlsOf(agent: HttpsAgent): { key: string; cert: string; ca: string } {
  const o = agent.options as { key: string; cert: string; ca: string };
  return { key: o.key, cert: o.cert, ca: o.ca };
}

/** Each client sends, waits for the answer, and sends again; a second of warm-up is not counted. */
async function closedLoop(clients: Client[], url: string, expected: number, durationMs: number) {
  const warmupMs = 1000;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  let counted = 0;
  let failed = 0;
  let total = 0; // every answer, warm-up included, to divide the server's CPU time by
  await Promise.all(
    clients.map(async (client, i) => {
      let seq = i * 1_000_000;
      while (performance.now() < end) {
        try {
          const res = await post(url, heartbeat(seq++), { agent: client.agent });
          total++;
          const now = performance.now();
          if (now < measureFrom || now > end) continue;
          if (res.status === expected) counted++;
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { rate: counted / (durationMs / 1000), failed, total };
}
