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
  const server = await spawnServer(['--enroll-rate', '1000000', ...(opts.db ? ['--db', opts.db] : [])]);
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
    const start = performance.now();
    const { failed, firstError } = await pool(applicants, opts.concurrency, async (a) => {
      await enroll(server, secret, a);
    });
    const seconds = (performance.now() - start) / 1000;
    const { items } = await server.admin<{ items: unknown[] }>('GET', '/v1/nodes?limit=1');
    void items;
    const common = {
      agents: opts.agents,
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
    emit('enroll', 'ecdsa_p256_signs_per_sec', signRate, {
      unit: 'raw node:crypto signatures/s on one core, same run',
    });
  } finally {
    await server.stop();
  }
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
