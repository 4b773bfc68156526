import { X509Certificate } from 'node:crypto';
import type { CaStatus, CaView } from '@muster/proto';
import { formatDuration } from '@muster/proto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { CertificateAuthority } from '../../pki/ca.js';
import type { FleetRoots } from '../../pki/fleet.js';
import type { Schema } from '../../store/schema.js';

/** Warn this long before the fleet CA expires, or at a third of its lifetime if that is longer. */
export const CA_WARNING_MS = 365 * 86_400_000;

const PAGE = 1000;

/**
 * How many active nodes there are, and how many of them hold a current certificate from each
 * of `roots`. Counted from the certificates themselves, page by page, so it holds across a
 * rotation whatever the store remembers about issuers.
 */
export async function countNodesOnRoots(
  db: Kysely<Schema>,
  roots: readonly Pick<CertificateAuthority, 'issued'>[],
): Promise<{ active: number; onRoot: number[] }> {
  let active = 0;
  const onRoot = roots.map(() => 0);
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
      const cert = new X509Certificate(row.cert_pem);
      const i = roots.findIndex((root) => root.issued(cert));
      if (i >= 0) onRoot[i]!++;
    }
    if (rows.length < PAGE) break;
    after = rows.at(-1)!.id;
  }
  return { active, onRoot };
}

/** The fleet CA as operators see it: its expiry, warnings, a rotation, and which nodes it issued. */
export class CaService {
  constructor(
    private readonly deps: {
      db: Kysely<Schema>;
      clock: Clock;
      roots: Pick<FleetRoots, 'issuer' | 'presented'>;
    },
  ) {}

  async status(): Promise<CaStatus> {
    const { db, clock, roots } = this.deps;
    const now = clock.now();
    const issuer = roots.issuer();
    const retiring = roots.presented() === issuer ? undefined : roots.presented();
    const rotation = retiring
      ? await db.selectFrom('ca_rotation').select('started_at').where('id', '=', 1).executeTakeFirst()
      : undefined;
    const { active, onRoot } = await countNodesOnRoots(db, retiring ? [issuer, retiring] : [issuer]);
    const [onThisCa, onRetiring] = [onRoot[0]!, onRoot[1] ?? 0];
    const cert = issuer.certificate;
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    const left = notAfter - now;
    const warnings: string[] = [];
    if (left <= 0) warnings.push(`the fleet CA expired ${formatDuration(-left)} ago: no node can renew`);
    else if (left < Math.max(CA_WARNING_MS, (notAfter - notBefore) / 3))
      warnings.push(`the fleet CA expires in ${formatDuration(left)}: plan its rotation now`);
    const elsewhere = active - onThisCa - onRetiring;
    if (elsewhere > 0)
      warnings.push(
        `${elsewhere === 1 ? '1 active node holds a certificate' : `${elsewhere} active nodes hold certificates`} from a retired root and cannot connect until enrolled again`,
      );
    return {
      ca: caView(issuer),
      rotation: retiring
        ? {
            startedAt: new Date(rotation?.started_at ?? now).toISOString(),
            retiring: caView(retiring),
            nodesOnRetiring: onRetiring,
          }
        : null,
      nodes: { active, onThisCa, onOtherCa: active - onThisCa },
      warnings,
    };
  }
}

function caView(ca: Pick<CertificateAuthority, 'certificate' | 'pin'>): CaView {
  const cert = ca.certificate;
  return {
    subject: cert.subject.split('\n').join(', '),
    serial: cert.serialNumber.toLowerCase(),
    pin: ca.pin,
    notBefore: new Date(Date.parse(cert.validFrom)).toISOString(),
    notAfter: new Date(Date.parse(cert.validTo)).toISOString(),
  };
}
