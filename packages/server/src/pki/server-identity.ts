import { writeFileAtomic } from '@muster/host';
import type { Clock, IdSource } from '../clock.js';
import { needsNewServerCert, SERVER_CERT_LIFETIME_MS, type ServerIdentity } from './datadir.js';

export interface ServerIdentityRenewerDeps {
  identity: ServerIdentity;
  /** The names and addresses the certificate must carry. */
  sans: readonly string[];
  clock: Clock;
  ids: IdSource;
  /** Puts the new certificate in front of new connections (`server.setSecureContext`). */
  apply(): void;
}

/**
 * Keeps the server's own TLS certificate fresh without a restart: when a third of its lifetime
 * is left, or it is not from the fleet CA now presented (a CA rotation finished), a new one is
 * issued for the same key, written atomically, and handed to the listeners. Connections
 * already open keep the certificate they were set up with.
 */
export class ServerIdentityRenewer {
  constructor(private readonly deps: ServerIdentityRenewerDeps) {}

  /** Renews when due; returns whether it did. */
  async check(): Promise<boolean> {
    const { identity, sans, clock, ids } = this.deps;
    const now = clock.now();
    if (!needsNewServerCert(identity.serverCertPem, identity.ca, sans, now)) return false;
    const issued = identity.ca.issueServerCertificate({
      keyPem: identity.serverKeyPem,
      sans,
      serial: ids.serial(),
      now,
      lifetimeMs: SERVER_CERT_LIFETIME_MS,
    });
    await writeFileAtomic(identity.paths.serverCert, issued.pem, 0o644);
    identity.serverCertPem = issued.pem;
    this.deps.apply();
    return true;
  }

  /** Checks every `intervalMs` until the signal aborts; never overlaps itself. */
  start(
    intervalMs: number,
    signal: AbortSignal,
    onError: (err: unknown) => void,
    onRenewed: () => void,
  ): void {
    const tick = async () => {
      if (signal.aborted) return;
      try {
        if (await this.check()) onRenewed();
      } catch (err) {
        onError(err);
      }
      if (!signal.aborted) setTimeout(tick, intervalMs * (0.9 + 0.2 * Math.random())).unref();
    };
    setTimeout(tick, intervalMs).unref();
  }
}

/** The certificate chain the server presents: its own certificate, then the fleet CA. */
export function serverChain(identity: Pick<ServerIdentity, 'serverCertPem' | 'ca'>): string {
  return `${identity.serverCertPem.trim()}\n${identity.ca.pem.trim()}\n`;
}
