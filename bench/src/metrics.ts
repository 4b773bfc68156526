import { Agent as HttpsAgent } from 'node:https';
import {
  emit,
  enroll,
  heartbeat,
  makeApplicants,
  metricsText,
  pool,
  post,
  progress,
  spawnServer,
} from './support.js';

export interface MetricsOptions {
  /** Nodes in the store, each enrolled for real. */
  nodes: number;
  /** How long each phase (idle, then scraped) is measured. */
  durationMs: number;
  db?: string;
}

/** Agents whose heartbeat latency is measured; every one sends ten a second. */
const PROBES = 50;
const PROBE_GAP_MS = 100;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * What a Prometheus scrape costs the agent plane: `nodes` real enrollments in the store, then
 * heartbeat latency from probe agents with nothing else going on, then the same with `/metrics`
 * scraped (with a credential) every second. Both planes share one event loop, so a scrape that
 * walks the fleet shows up as heartbeat latency. Goal: p50 under scrapes within 2x idle.
 */
export async function metricsScenario(opts: MetricsOptions): Promise<void> {
  // The probes report faster than the interval they are told, to be measured: let them.
  const server = await spawnServer(['--enroll-rate', '100000', '--heartbeat-burst', '1000000000'], opts.db);
  try {
    const { secret } = await server.admin<{ secret: string }>('POST', '/v1/tokens', {
      uses: opts.nodes,
      ttlSec: 3600,
    });
    const applicants = await makeApplicants(opts.nodes, 'mx');
    progress(`enrolling ${opts.nodes} nodes`);
    const probes: HttpsAgent[] = [];
    const enrolled = await pool(applicants, 200, async (a) => {
      const answer = await enroll(server, secret, a);
      if (probes.length < PROBES)
        probes.push(
          new HttpsAgent({
            keepAlive: true,
            maxSockets: 1,
            key: a.keyPem,
            cert: answer.certificate,
            ca: server.caPem,
          }),
        );
    });
    if (enrolled.failed > 0)
      throw new Error(`${enrolled.failed} enrollments failed: ${String(enrolled.firstError)}`);
    const url = `${server.agentUrl}/v1/agent/heartbeat`;
    // Warm up: every probe reports once, and the server makes its first full status pass.
    await Promise.all(probes.map((agent, i) => post(url, heartbeat(i), { agent })));
    await metricsText(server.adminUrl, server.adminToken);

    progress(`heartbeat latency, idle, for ${opts.durationMs / 1000} s`);
    const idle = await measure(probes, url, opts.durationMs, async () => {});
    progress(`heartbeat latency under a /metrics scrape every second, for ${opts.durationMs / 1000} s`);
    const scrapes: number[] = [];
    const scraped = await measure(probes, url, opts.durationMs, async (signal) => {
      while (!signal.aborted) {
        const started = performance.now();
        await metricsText(server.adminUrl, server.adminToken);
        scrapes.push(performance.now() - started);
        await new Promise((resolve) =>
          setTimeout(resolve, Math.max(0, 1000 - (performance.now() - started))),
        );
      }
    });
    for (const agent of probes) agent.destroy();

    const common = { nodes: opts.nodes, probes: PROBES, store: opts.db ? 'postgres' : 'sqlite' };
    const idleP50 = percentile(idle.latencies, 50);
    const scrapedP50 = percentile(scraped.latencies, 50);
    emit('metrics', 'heartbeat_p50_ms_idle', idleP50, { ...common, heartbeats: idle.latencies.length });
    emit('metrics', 'heartbeat_p50_ms_scraped_every_second', scrapedP50, {
      ...common,
      heartbeats: scraped.latencies.length,
      failed: scraped.failed + idle.failed,
    });
    emit('metrics', 'heartbeat_p99_ms_scraped_every_second', percentile(scraped.latencies, 99), common);
    emit('metrics', 'scraped_to_idle_p50_ratio', scrapedP50 / Math.max(0.001, idleP50), { goal: '<= 2' });
    emit(
      'metrics',
      'scrape_ms_p50',
      percentile(
        scrapes.sort((a, b) => a - b),
        50,
      ),
      {
        ...common,
        scrapes: scrapes.length,
      },
    );
  } finally {
    await server.stop();
  }
}

/** Each probe sends a heartbeat, waits for the answer and a tenth of a second, and again. */
async function measure(
  probes: HttpsAgent[],
  url: string,
  durationMs: number,
  alongside: (signal: AbortSignal) => Promise<void>,
): Promise<{ latencies: number[]; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  const stop = new AbortController();
  const end = performance.now() + durationMs;
  const beside = alongside(stop.signal);
  await Promise.all(
    probes.map(async (agent, i) => {
      let seq = (i + 1) * 1_000_000;
      while (performance.now() < end) {
        const started = performance.now();
        try {
          const res = await post(url, heartbeat(seq++), { agent });
          if (res.status === 202) latencies.push(performance.now() - started);
          else failed++;
        } catch {
          failed++;
        }
        await new Promise((resolve) => setTimeout(resolve, PROBE_GAP_MS));
      }
    }),
  );
  stop.abort();
  await beside;
  return { latencies: latencies.sort((a, b) => a - b), failed };
}
