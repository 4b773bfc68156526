import type { X509Certificate } from 'node:crypto';
import type { CertificateAuthority } from './ca.js';
import type { ServerIdentity } from './datadir.js';

/**
 * The fleet's roots as they stand now. Read at each use rather than captured, since a CA
 * rotation changes them while the server runs.
 */
export interface FleetRoots {
  /** Issues every new node certificate: the new root during a rotation. */
  issuer(): CertificateAuthority;
  /** The root behind the server's own TLS certificate; join lines pin it. */
  presented(): CertificateAuthority;
  /** Every root trusted now: one, or the old and the new during a rotation. */
  trusted(): CertificateAuthority[];
  /** The trusted roots as one PEM bundle, which agents install as their CA file. */
  bundle(): string;
  /** True when a trusted root issued the certificate; a retired root's certificates are refused. */
  trusts(cert: X509Certificate): boolean;
  /** True when a rotation is under way and the certificate comes from the root it retires. */
  retiring(cert: X509Certificate): boolean;
}

export function fleetRoots(identity: Pick<ServerIdentity, 'ca' | 'nextCa'>): FleetRoots {
  const trusted = () => (identity.nextCa ? [identity.ca, identity.nextCa] : [identity.ca]);
  return {
    issuer: () => identity.nextCa ?? identity.ca,
    presented: () => identity.ca,
    trusted,
    bundle: () =>
      identity.nextCa ? `${identity.ca.pem.trim()}\n${identity.nextCa.pem.trim()}\n` : identity.ca.pem,
    trusts: (cert) => trusted().some((ca) => ca.issued(cert)),
    retiring: (cert) => identity.nextCa !== undefined && identity.ca.issued(cert),
  };
}
