import { X509Certificate } from 'node:crypto';

/** Node certificates are back-dated this much (CONTRACT section 4); it is not part of the lifetime. */
export const BACKDATE_MS = 5 * 60_000;

/** The validity a renewal schedule is computed from. */
export interface Validity {
  /** When the certificate was issued: its notBefore plus the back-dating. */
  issuedAt: number;
  notAfter: number;
}

export function validityOf(certPem: string): Validity {
  const cert = new X509Certificate(certPem);
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  // A certificate shorter than the back-dating was not made by this control plane's policy;
  // count its whole validity rather than a negative lifetime.
  const issuedAt = notAfter - notBefore > BACKDATE_MS ? notBefore + BACKDATE_MS : notBefore;
  return { issuedAt, notAfter };
}

/**
 * When to renew: after `fraction` of the lifetime, moved by up to ±5 % of the lifetime (less
 * when the fraction is close to 0 or 1) so a fleet issued at once does not renew at once.
 * Measured from issuance, so a short lifetime renews about once per lifetime, never in a loop.
 */
export function renewalTime(
  validity: Validity,
  fraction: number,
  random: () => number = Math.random,
): number {
  const lifetime = Math.max(0, validity.notAfter - validity.issuedAt);
  const span = Math.min(0.05, fraction / 2, (1 - fraction) / 2);
  const at = fraction + (2 * random() - 1) * span;
  return validity.issuedAt + Math.round(lifetime * at);
}

/**
 * The server's time as this host best knows it: the local clock plus the offset the last
 * heartbeat answer showed, so renewal decisions hold even when the host's clock is off.
 */
export class ServerTime {
  private offsetMs = 0;
  private known = false;

  constructor(private readonly local: () => number = Date.now) {}

  /** Records a server time seen in an answer to a request sent at `sentAt` (local time). */
  observe(serverTimeIso: string, sentAt: number, receivedAt: number = this.local()): void {
    const server = Date.parse(serverTimeIso);
    if (!Number.isFinite(server)) return;
    this.offsetMs = server - (sentAt + receivedAt) / 2;
    this.known = true;
  }

  now(): number {
    return this.local() + this.offsetMs;
  }

  localNow(): number {
    return this.local();
  }

  /** How far the local clock is behind the server's (negative: ahead); 0 until an answer came. */
  get offset(): number {
    return this.offsetMs;
  }

  get observed(): boolean {
    return this.known;
  }
}
