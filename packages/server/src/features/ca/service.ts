import { X509Certificate } from 'node:crypto';
import type { CaStatus } from '@muster/proto';
import { formatDuration } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { CertificateAuthority } from '../../pki/ca.js';
import type { Schema } from '../../store/schema.js';

/** Warn this long before the fleet CA expires, or at a third of its lifetime if that is longer. */
export const CA_WARNING_MS = 365 * 86_400_000;

const PAGE = 1000;

/** The fleet CA as operators see it: its expiry, warnings, and which nodes it issued. */
export class CaService {
  constructor(
    private readonly deps: {
      db: Kysely<Schema>;
      clock: Clock;
      ca: Pick<CertificateAuthority, 'certificate' | 'pin'>;
    },
  ) {}

  async status(): Promise<CaStatus> {
    const { db, clock, ca } = this.deps;
    const now = clock.now();
    const cert = ca.certificate;
    let active = 0;
    let onThisCa = 0;
    // Counted from the certificates themselves, page by page, so it holds across a rotation.
    for (let after = ''; ; ) {
      const rows = await db
        .selectFrom('nodes')
        .select(['id', 'cert_pem'])
        .where('decommissioned_at', 'is', null)
        .where('id', '>', after)
        .orderBy('id')
        .limit(PAGE)
        .execute();
      for (const row of rows) {
        active++;
        if (new X509Certificate(row.cert_pem).checkIssued(cert)) onThisCa++;
      }
      if (rows.length < PAGE) break;
      after = rows.at(-1)!.id;
    }
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    const left = notAfter - now;
    const warnings: string[] = [];
    if (left <= 0) warnings.push(`the fleet CA expired ${formatDuration(-left)} ago: no node can renew`);
    else if (left < Math.max(CA_WARNING_MS, (notAfter - notBefore) / 3))
      warnings.push(`the fleet CA expires in ${formatDuration(left)}: plan its rotation now`);
    if (active > onThisCa)
      warnings.push(`${active - onThisCa} active nodes still hold certificates from another root`);
    return {
      ca: {
        subject: cert.subject.split('\n').join(', '),
        serial: cert.serialNumber.toLowerCase(),
        pin: ca.pin,
        notBefore: new Date(notBefore).toISOString(),
        notAfter: new Date(notAfter).toISOString(),
      },
      nodes: { active, onThisCa, onOtherCa: active - onThisCa },
      warnings,
    };
  }
}
