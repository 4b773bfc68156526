import type { ChildProcess } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Command,
  type CommandList,
  type CommandView,
  formatPublicKey,
  signCommand,
  signPolicy,
} from '@muster/proto';
import {
  type BenchServer,
  emit,
  enroll,
  makeApplicants,
  pool,
  progress,
  rssBytes,
  spawnNode,
  spawnServer,
  stopChild,
} from './support.js';

export interface FanoutOptions {
  agents: number;
  rounds: number;
  processes: number;
  db?: string;
  /** 2: the same rounds again with the channels split over two replicas on one database. */
  replicas?: number;
}

type Identity = { keyPem: string; certPem: string; nodeId: string };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/**
 * One signed command to N nodes holding channels, a few rounds: from `POST /v1/commands` to
 * each node's verified receipt stored by the server. Reports p50/p99 over every node and the
 * time to the last receipt, and the server's memory per held channel.
 */
export async function fanoutScenario(opts: FanoutOptions): Promise<void> {
  const server = await spawnServer(SERVER_ARGS, opts.db, opts.agents + 10_000);
  const workers: ChildProcess[] = [];
  try {
    const root = createPrivateKey(readFileSync(join(server.dataDir, 'root.key'), 'utf8'));
    const operator = generateKeyPairSync('ed25519');
    const operatorKey = formatPublicKey(operator.publicKey);
    const policy = {
      version: 1,
      operators: [{ name: 'bench', publicKey: operatorKey, profiles: ['*'] }],
      profiles: { default: { actions: { noop: { argv: ['true'], timeoutSec: 10, maxOutputBytes: 0 } } } },
    };
    await server.admin('POST', '/v1/policy', { policy, signature: signPolicy(policy, root) });

    progress(`enrolling ${opts.agents} agents (enrollment rate limit raised for this run)`);
    const { secret } = await server.admin<{ secret: string }>('POST', '/v1/tokens', {
      uses: opts.agents,
      ttlSec: 3600,
    });
    const applicants = await makeApplicants(opts.agents, 'fo');
    const identities: Identity[] = [];
    await pool(applicants, 200, async (a) => {
      const enrolled = await enroll(server, secret, a);
      identities.push({ keyPem: a.keyPem, certPem: enrolled.certificate, nodeId: enrolled.nodeId });
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rssBefore = rssBytes(server.pid);
    const signer = { privateKey: operator.privateKey, operatorKey };
    const one = await rounds(opts, [server], identities, signer, workers);
    const rssHeld = one.rssHeld;
    emitRounds(opts, one, opts.replicas && opts.replicas > 1 ? { replicas: 1 } : {});
    emit('fanout', 'server_memory_per_channel_kib', (rssHeld - rssBefore) / 1024 / Math.max(1, one.held), {});
    if (opts.replicas && opts.replicas > 1) {
      const second = await spawnServer(SERVER_ARGS, opts.db, opts.agents + 10_000, server);
      try {
        const two = await rounds(opts, [server, second], identities, signer, workers);
        emitRounds(opts, two, {
          replicas: 2,
          note: 'channels split over two replicas, commands posted on the first',
        });
        emit('fanout', 'replica_ratio_p99', two.p99 / Math.max(1, one.p99), {
          note: 'p99 with two replicas over p99 with one, same run',
        });
      } finally {
        await second.stop();
      }
    }
  } finally {
    await Promise.all(workers.map((w) => stopChild(w)));
    await server.stop();
  }
}

const SERVER_ARGS = ['--enroll-rate', '1000000', '--max-heartbeat-rate', '1000000'];

interface Rounds {
  held: number;
  rssHeld: number;
  latencies: number[];
  lasts: number[];
  p99: number;
  cpuUsPerReceipt: number;
}

/** Opens every channel (spread over the replicas), runs the rounds, then closes the channels. */
async function rounds(
  opts: FanoutOptions,
  replicas: BenchServer[],
  identities: Identity[],
  signer: { privateKey: KeyObject; operatorKey: string },
  workers: ChildProcess[],
): Promise<Rounds> {
  const server = replicas[0]!;
  progress(
    `opening ${identities.length} channels from ${opts.processes} processes to ${replicas.length} replica(s)`,
  );
  const per = Math.ceil(identities.length / opts.processes);
  const mine: ChildProcess[] = [];
  for (let i = 0; i < opts.processes; i++) {
    const target = replicas[i % replicas.length]!;
    const file = join(server.dataDir, `fanout-${replicas.length}-${i}.json`);
    writeFileSync(file, JSON.stringify(identities.slice(i * per, (i + 1) * per)));
    const worker = spawnNode(
      [
        fileURLToPath(new URL('./fanout-worker.js', import.meta.url)),
        file,
        `${target.agentUrl.replace('https:', 'wss:')}/v1/agent/channel`,
        join(server.dataDir, 'ca.pem'),
        signer.operatorKey,
      ],
      per + 1000,
    );
    workers.push(worker);
    mine.push(worker);
    await firstLine(worker);
  }
  const held = (await Promise.all(replicas.map((r) => r.channelsHeld()))).reduce((a, b) => a + b, 0);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const rssHeld = rssBytes(server.pid);
  const latencies: number[] = [];
  const lasts: number[] = [];
  const cpu = () => replicas.reduce((sum, r) => sum + r.cpuSeconds(), 0);
  const cpuBefore = cpu();
  for (let round = 0; round < opts.rounds; round++) {
    const t0 = Date.now();
    const id = await issue(server, signer.privateKey);
    for (;;) {
      const list = await server.admin<CommandList>('GET', '/v1/commands?limit=1');
      // MUSTER_BENCH_TRACE=1 prints how the states move during a round (where the time goes).
      if (process.env.MUSTER_BENCH_TRACE)
        console.error(`${Date.now() - t0} ms ${JSON.stringify(list.items[0]?.summary)}`);
      if ((list.items[0]?.summary.succeeded ?? 0) >= held) break;
      if (Date.now() - t0 > 120_000) throw new Error(`round ${round}: not every node answered in 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    lasts.push(Date.now() - t0);
    const view = await server.admin<CommandView>('GET', `/v1/commands/${id}`);
    for (const t of view.targets ?? []) latencies.push(Date.parse(t.updatedAt) - t0);
    progress(`round ${round + 1}: ${held} receipts in ${lasts.at(-1)} ms`);
  }
  const cpuUsPerReceipt = ((cpu() - cpuBefore) * 1e6) / Math.max(1, held * opts.rounds);
  await Promise.all(mine.map((w) => stopChild(w)));
  latencies.sort((a, b) => a - b);
  return { held, rssHeld, latencies, lasts, p99: percentile(latencies, 99), cpuUsPerReceipt };
}

/** One signed noop to every node; returns its id. */
async function issue(server: BenchServer, privateKey: KeyObject): Promise<string> {
  const now = Date.now();
  const command: Command = {
    v: 1,
    id: randomUUID(),
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 120_000).toISOString(),
    operator: 'bench',
    target: { all: true },
    action: 'noop',
    args: {},
  };
  await server.admin('POST', '/v1/commands', { command, signature: signCommand(command, privateKey) });
  return command.id;
}

function emitRounds(opts: FanoutOptions, r: Rounds, extra: Record<string, unknown>): void {
  const limit = { nodes: r.held, rounds: opts.rounds, store: opts.db ? 'postgres' : 'sqlite', ...extra };
  emit('fanout', 'receipt_latency_p50_ms', percentile(r.latencies, 50), {
    ...limit,
    unit: 'POST /v1/commands to a verified receipt stored, per node',
  });
  emit('fanout', 'receipt_latency_p99_ms', r.p99, { ...limit, goal: '< 2000 at 10000 nodes' });
  emit('fanout', 'last_receipt_ms', Math.max(...r.lasts), {
    ...limit,
    note: 'slowest round, to the last receipt as the API reports it',
  });
  emit('fanout', 'server_cpu_us_per_receipt', r.cpuUsPerReceipt, {
    ...limit,
    note: 'every server process together, over the rounds, per node answered (polling included)',
  });
}

function firstLine(child: ReturnType<typeof spawnNode>): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`a fanout worker exited with ${code}`)));
  });
}
