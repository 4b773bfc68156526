import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { heartbeatToStreamLatency } from './status-probe.js';
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

export interface ChannelsOptions {
  agents: number;
  durationMs: number;
  /** Client processes to spread the channels over. */
  processes: number;
}

/**
 * N agents each hold a channel (from several client processes, so no one process runs out of
 * descriptors) and heartbeat over it every 10 s, spread evenly. Reports how many channels the
 * server holds, the heartbeats/s it answered, and the server's memory per held channel.
 */
export async function channelsScenario(opts: ChannelsOptions): Promise<void> {
  const fdLimit = opts.agents + 10_000;
  const server = await spawnServer(
    ['--enroll-rate', '1000000', '--max-heartbeat-rate', '1000000', '--status-debounce', '1s'],
    undefined,
    fdLimit,
  );
  const workers: ReturnType<typeof spawnNode>[] = [];
  try {
    progress(`enrolling ${opts.agents} agents (enrollment rate limit raised for this run)`);
    const { secret } = await server.admin<{ secret: string }>('POST', '/v1/tokens', {
      uses: opts.agents,
      ttlSec: 3600,
    });
    const applicants = await makeApplicants(opts.agents, 'ch');
    const identities: Array<{ keyPem: string; certPem: string }> = [];
    await pool(applicants, 200, async (a) => {
      identities.push({ keyPem: a.keyPem, certPem: (await enroll(server, secret, a)).certificate });
    });
    const pid = server.pid;
    await new Promise((resolve) => setTimeout(resolve, 2000)); // let the enrollment garbage go
    const rssBefore = rssBytes(pid);

    progress(`opening ${identities.length} channels from ${opts.processes} processes`);
    const url = `${server.agentUrl.replace('https:', 'wss:')}/v1/agent/channel`;
    const per = Math.ceil(identities.length / opts.processes);
    const opened: number[] = [];
    for (let i = 0; i < opts.processes; i++) {
      const file = join(server.dataDir, `identities-${i}.json`);
      writeFileSync(file, JSON.stringify(identities.slice(i * per, (i + 1) * per)));
      const worker = spawnNode(
        [
          fileURLToPath(new URL('./channel-worker.js', import.meta.url)),
          file,
          url,
          join(server.dataDir, 'ca.pem'),
          '10000',
        ],
        per + 1000,
      );
      workers.push(worker);
      opened.push(await firstLine<{ opened: number }>(worker).then((m) => m.opened));
    }
    const held = opened.reduce((a, b) => a + b, 0);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const rssHeld = rssBytes(pid);
    for (const worker of workers) worker.kill('SIGUSR1'); // now the heartbeats
    await new Promise((resolve) => setTimeout(resolve, 10_000)); // one interval: every channel reporting
    const acked0 = await server.heartbeatsByChannel();
    const start = performance.now();
    await new Promise((resolve) => setTimeout(resolve, opts.durationMs));
    const rate = ((await server.heartbeatsByChannel()) - acked0) / ((performance.now() - start) / 1000);
    const channelsHeld = await server.channelsHeld();
    progress('a probe agent changes its health 20 times while the fleet reports');
    const latencies = (await heartbeatToStreamLatency(server, 10)).sort((a, b) => a - b);
    const at = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;

    emit('channels', 'channels_held', channelsHeld, {
      asked: opts.agents,
      opened: held,
      goal: '>= 20000',
      note: 'one process can hold no more than its open-files limit (ulimit -Hn) in connections',
    });
    emit('channels', 'heartbeats_per_sec', rate, {
      unit: 'heartbeats/s answered over channels, each agent every 10 s',
    });
    progress('the same connections to a bare Node wss/mTLS server, for the limit');
    const bare = await bareMemoryPerConnection(server.dataDir, identities.slice(0, 5000));
    emit(
      'channels',
      'server_memory_per_channel_kib',
      (rssHeld - rssBefore) / 1024 / Math.max(1, channelsHeld),
      {
        goal: '<= 40',
        note: 'growth of the server RSS while the channels opened, before any heartbeat',
        bare_node_wss_mtls_kib: Number(bare.toFixed(1)),
      },
    );
    emit('channels', 'server_rss_mib', rssHeld / 2 ** 20, {});
    const latency = {
      unit: 'ms from a heartbeat over the channel to its node.status_changed event at an SSE client',
      samples: latencies.length,
      status_debounce_ms: 1000,
      note: 'includes the 1 s status debounce this run sets (the default is 15 s)',
    };
    emit('channels', 'heartbeat_to_stream_p50_ms', at(50), latency);
    emit('channels', 'heartbeat_to_stream_p99_ms', at(99), latency);
  } finally {
    await Promise.all(workers.map((w) => stopChild(w)));
    await server.stop();
  }
}

function firstLine<T>(child: ReturnType<typeof spawnNode>): Promise<T> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve(JSON.parse(line) as T);
    });
    child.once('exit', (code) => reject(new Error(`a channel worker exited with ${code}`)));
  });
}

/**
 * The memory a bare Node HTTPS server (client certificates required, same CA) grows by per
 * WebSocket it holds: the floor under Muster's own figure, measured in the same run.
 */
async function bareMemoryPerConnection(
  dataDir: string,
  identities: Array<{ keyPem: string; certPem: string }>,
) {
  const bare = spawnNode(
    [
      fileURLToPath(new URL('./bare-channel-server.js', import.meta.url)),
      join(dataDir, 'server.key'),
      join(dataDir, 'server.pem'),
      join(dataDir, 'ca.pem'),
    ],
    identities.length + 1000,
  );
  let worker: ReturnType<typeof spawnNode> | undefined;
  try {
    const { port } = await firstLine<{ port: number }>(bare);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = rssBytes(bare.pid!);
    const file = join(dataDir, 'identities-bare.json');
    writeFileSync(file, JSON.stringify(identities));
    worker = spawnNode(
      [
        fileURLToPath(new URL('./channel-worker.js', import.meta.url)),
        file,
        `wss://127.0.0.1:${port}/`,
        join(dataDir, 'ca.pem'),
        '10000',
      ],
      identities.length + 1000,
    );
    const { opened } = await firstLine<{ opened: number }>(worker);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    return (rssBytes(bare.pid!) - before) / 1024 / Math.max(1, opened);
  } finally {
    if (worker) await stopChild(worker);
    await stopChild(bare);
  }
}
