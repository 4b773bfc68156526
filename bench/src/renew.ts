import { Agent as HttpsAgent } from 'node:https';
import {
  type Applicant,
  emit,
  enroll,
  heartbeat,
  makeApplicants,
  pool,
  post,
  progress,
  spawnServer,
} from './support.js';

export interface RenewOptions {
  agents: number;
  concurrency: number;
  durationMs: number;
  db?: string;
}

const PROBES = 50;

/**
 * N enrolled agents renew at once, as after an outage: each renewal is a fresh mTLS connection,
 * an identity check, a CSR verification, a signature and a committed, recorded decision. A few
 * agents keep heartbeating throughout; their latency is measured quiet and during the storm.
 */
export async function renewScenario(opts: RenewOptions): Promise<void> {
  const server = await spawnServer(['--enroll-rate', '1000000', '--renew-rate', '1000000'], opts.db);
  try {
    progress(`enrolling ${opts.agents} agents (enrollment and renewal rate limits raised for this run)`);
    const applicants = await makeApplicants(opts.agents, 'rn');
    const { secret } = await server.admin<{ secret: string }>('POST', '/v1/tokens', {
      uses: opts.agents,
      ttlSec: 3600,
    });
    const holders: Array<{ applicant: Applicant; cert: string }> = [];
    const enrolled = await pool(applicants, opts.concurrency, async (applicant) => {
      holders.push({ applicant, cert: (await enroll(server, secret, applicant)).certificate });
    });
    if (enrolled.failed > 0) throw new Error(`enrollment failed: ${String(enrolled.firstError)}`);

    const probes = holders
      .slice(0, PROBES)
      .map(
        ({ applicant, cert }) =>
          new HttpsAgent({ keepAlive: true, maxSockets: 1, key: applicant.keyPem, cert, ca: server.caPem }),
      );
    const quiet: number[] = [];
    const storm: number[] = [];
    let bucket: number[] | undefined = quiet;
    let probeFailures = 0;
    const probing = Promise.all(
      probes.map(async (agent, i) => {
        let seq = i * 1_000_000;
        while (bucket) {
          const into = bucket;
          const start = performance.now();
          try {
            const res = await post(`${server.agentUrl}/v1/agent/heartbeat`, heartbeat(seq++), { agent });
            if (res.status !== 202) probeFailures++;
            else into.push(performance.now() - start);
          } catch {
            probeFailures++;
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }),
    );
    progress(`heartbeats from ${PROBES} agents for ${opts.durationMs / 1000} s, no renewals`);
    await new Promise((resolve) => setTimeout(resolve, opts.durationMs));

    progress(`${opts.agents} agents renew at once, ${opts.concurrency} in flight`);
    bucket = storm;
    const start = performance.now();
    const renewed = await pool(holders, opts.concurrency, async ({ applicant, cert }) => {
      const agent = new HttpsAgent({ keepAlive: false, key: applicant.keyPem, cert, ca: server.caPem });
      try {
        const res = await post(`${server.agentUrl}/v1/agent/renew`, { csr: applicant.csr }, { agent });
        if (res.status !== 200) throw new Error(`renew ${applicant.name}: ${res.status} ${res.body}`);
      } finally {
        agent.destroy();
      }
    });
    const seconds = (performance.now() - start) / 1000;
    bucket = undefined;
    await probing;
    for (const agent of probes) agent.destroy();

    const common = {
      agents: opts.agents,
      concurrency: opts.concurrency,
      store: opts.db ? 'postgres' : 'sqlite',
    };
    emit('renew', 'renewals_per_sec', (opts.agents - renewed.failed) / seconds, {
      ...common,
      failed: renewed.failed,
      ...(renewed.firstError ? { firstError: String(renewed.firstError) } : {}),
    });
    emit('renew', 'all_renewed_sec', seconds, { ...common, failed: renewed.failed });
    emit('renew', 'heartbeat_p99_ms_quiet', percentile(quiet, 0.99), {
      heartbeats: quiet.length,
      probes: PROBES,
    });
    emit('renew', 'heartbeat_p99_ms_during_storm', percentile(storm, 0.99), {
      heartbeats: storm.length,
      probes: PROBES,
      failed: probeFailures,
    });
  } finally {
    await server.stop();
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}
