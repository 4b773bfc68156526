import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { caPinOf } from '@muster/host';
import { dialTls } from './dial.js';

/** The server's chain does not lead to the CA the join line pinned. */
export class PinMismatchError extends Error {
  constructor(detail: string) {
    super(`the server at this address is not the one the join line names: ${detail}`);
    this.name = 'PinMismatchError';
  }
}

/**
 * First contact, pinned: reads the server's certificate chain before any secret is sent, finds
 * the CA whose public key hashes to `pin` (or to one of several trusted pins), and checks that it
 * issued the server's certificate. Returns that CA's PEM, which from then on is the only root
 * the agent trusts.
 */
export async function fetchPinnedCa(server: URL, pin: string | readonly string[]): Promise<string> {
  const pins = typeof pin === 'string' ? [pin] : pin;
  // Through the same dialer as every other request: each address of the name, the proxy if any.
  const socket = await dialTls(
    { host: server.hostname, port: Number(server.port || 443) },
    { rejectUnauthorized: false }, // trust is decided by the pin below, not by a public root
  );
  const chain: X509Certificate[] = [];
  try {
    let peer: PeerCertificate | undefined = socket.getPeerCertificate(true);
    const seen = new Set<string>();
    while (peer?.raw && !seen.has(peer.fingerprint256)) {
      seen.add(peer.fingerprint256);
      chain.push(new X509Certificate(peer.raw));
      peer = (peer as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
    }
  } finally {
    socket.destroy();
  }

  const [leaf] = chain;
  if (!leaf) throw new PinMismatchError('it presented no certificate');
  const ca = chain.find((cert) => pins.includes(caPinOf(cert.toString())));
  if (!ca) throw new PinMismatchError(`no certificate in its chain has the public key ${pins.join(' or ')}`);
  if (!ca.ca) throw new PinMismatchError('the pinned certificate is not a CA');
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) {
    throw new PinMismatchError('its certificate was not issued by the pinned CA');
  }
  return ca.toString();
}

/** The pins of every certificate in a PEM bundle, such as the roots an agent holds in ca.pem. */
export function pinsIn(bundle: string): string[] {
  const pems = bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  return [...new Set(pems.map((pem) => caPinOf(pem)))];
}
