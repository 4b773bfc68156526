import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
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
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/**
 * One signed command to N nodes holding channels, a few rounds: from `POST /v1/commands` to
 * each node's verified receipt stored by the server. Reports p50/p99 over every node and the
 * time to the last receipt, and the server's memory per held channel.
 */
export async function fanoutScenario(opts: FanoutOptions): Promise<void> {
  const server = await spawnServer(
    ['--enroll-rate', '1000000', '--max-heartbeat-rate', '1000000'],
    opts.db,
    opts.agents + 10_000,
  );
  const workers: ReturnType<typeof spawnNode>[] = [];
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
    const identities: Array<{ keyPem: string; certPem: string; nodeId: string }> = [];
    await pool(applicants, 200, async (a) => {
      const enrolled = await enroll(server, secret, a);
      identities.push({ keyPem: a.keyPem, certPem: enrolled.certificate, nodeId: enrolled.nodeId });
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rssBefore = rssBytes(server.pid);

    progress(`opening ${identities.length} channels from ${opts.processes} processes`);
    const url = `${server.agentUrl.replace('https:', 'wss:')}/v1/agent/channel`;
    const per = Math.ceil(identities.length / opts.processes);
    for (let i = 0; i < opts.processes; i++) {
      const file = join(server.dataDir, `fanout-${i}.json`);
      writeFileSync(file, JSON.stringify(identities.slice(i * per, (i + 1) * per)));
      const worker = spawnNode(
        [
          fileURLToPath(new URL('./fanout-worker.js', import.meta.url)),
          file,
          url,
          join(server.dataDir, 'ca.pem'),
          operatorKey,
        ],
        per + 1000,
      );
      workers.push(worker);
      await firstLine(worker);
    }
    const held = await server.channelsHeld();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rssHeld = rssBytes(server.pid);

    const latencies: number[] = [];
    const lasts: number[] = [];
    for (let round = 0; round < opts.rounds; round++) {
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
      const t0 = Date.now();
      await server.admin('POST', '/v1/commands', {
        command,
        signature: signCommand(command, operator.privateKey),
      });
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
      const view = await server.admin<CommandView>('GET', `/v1/commands/${command.id}`);
      for (const t of view.targets ?? []) latencies.push(Date.parse(t.updatedAt) - t0);
      progress(`round ${round + 1}: ${held} receipts in ${lasts.at(-1)} ms`);
    }
    latencies.sort((a, b) => a - b);
    const limit = { nodes: held, rounds: opts.rounds, store: opts.db ? 'postgres' : 'sqlite' };
    emit('fanout', 'receipt_latency_p50_ms', percentile(latencies, 50), {
      ...limit,
      unit: 'POST /v1/commands to a verified receipt stored, per node',
    });
    emit('fanout', 'receipt_latency_p99_ms', percentile(latencies, 99), {
      ...limit,
      goal: '< 2000 at 10000 nodes',
    });
    emit('fanout', 'last_receipt_ms', Math.max(...lasts), {
      ...limit,
      note: 'slowest round, to the last receipt as the API reports it',
    });
    emit('fanout', 'server_memory_per_channel_kib', (rssHeld - rssBefore) / 1024 / Math.max(1, held), {});
  } finally {
    await Promise.all(workers.map((w) => stopChild(w)));
    await server.stop();
  }
}

function firstLine(child: ReturnType<typeof spawnNode>): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`a fanout worker exited with ${code}`)));
  });
}
