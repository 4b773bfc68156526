import { createSign, generateKeyPairSync } from 'node:crypto';
import { emit, enroll, makeApplicants, pool, progress, spawnServer } from './support.js';

export interface EnrollOptions {
  agents: number;
  concurrency: number;
  db?: string;
}

/**
 * N agents enroll at once, each with its own key and CSR made beforehand; every enrollment is
 * a fresh TLS connection, a CSR verification, a certificate signature and a committed
 * transaction. Measured beside the raw ECDSA P-256 sign rate of this machine, same run.
 */
export async function enrollScenario(opts: EnrollOptions): Promise<void> {
  const signRate = ecdsaSignRate(1000);
  const server = await spawnServer(['--enroll-rate', '1000000'], opts.db);
  try {
    progress(`making ${opts.agents} keys and CSRs (not timed)`);
    const applicants = await makeApplicants(opts.agents, 'en');
    const { secret } = await server.admin<{ secret: string }>('POST', '/v1/tokens', {
      uses: opts.agents,
      ttlSec: 3600,
    });
    progress(
      `enrolling ${opts.agents} agents, ${opts.concurrency} at a time (enrollment rate limit raised for this run)`,
    );
    const cpuBefore = server.cpuSeconds();
    const start = performance.now();
    const { failed, firstError } = await pool(applicants, opts.concurrency, async (a) => {
      await enroll(server, secret, a);
    });
    const seconds = (performance.now() - start) / 1000;
    const serverCpuMs = ((server.cpuSeconds() - cpuBefore) * 1000) / (opts.agents - failed || 1);
    const enrolled = await countNodes(server);
    const common = {
      agents: opts.agents,
      enrolled,
      concurrency: opts.concurrency,
      store: opts.db ? 'postgres' : 'sqlite',
    };
    emit('enroll', 'enrollments_per_sec', (opts.agents - failed) / seconds, { ...common, failed });
    emit('enroll', 'all_enrolled_sec', seconds, {
      ...common,
      goal: '<= 10',
      failed,
      ...(firstError ? { firstError: String(firstError) } : {}),
    });
    emit('enroll', 'server_cpu_ms_per_enrollment', serverCpuMs, {
      note: 'server process only (TLS handshake, CSR check, issuance, commit); the load generator shares this machine',
    });
    emit('enroll', 'server_capacity_per_core', 1000 / serverCpuMs, { unit: 'enrollments/s on one core' });
    emit('enroll', 'ecdsa_p256_signs_per_sec', signRate, {
      unit: 'raw node:crypto signatures/s on one core, same run',
    });
  } finally {
    await server.stop();
  }
}

/** Counts the nodes the server lists, so the figure is checked against what it stored. */
async function countNodes(server: { admin<T>(method: string, path: string): Promise<T> }): Promise<number> {
  let count = 0;
  let cursor: string | null = null;
  do {
    const page: { items: unknown[]; nextCursor: string | null } = await server.admin(
      'GET',
      `/v1/nodes?limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
    );
    count += page.items.length;
    cursor = page.nextCursor;
  } while (cursor);
  return count;
}

function ecdsaSignRate(ms: number): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.alloc(256, 7);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    createSign('sha256').update(data).sign(privateKey);
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}
