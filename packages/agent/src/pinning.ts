import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import { caPinOf } from '@muster/host';

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
export async function fetchPinnedCa(
  server: URL,
  pin: string | readonly string[],
  timeoutMs = 15_000,
): Promise<string> {
  const pins = typeof pin === 'string' ? [pin] : pin;
  const host = server.hostname.replace(/^\[|\]$/g, '');
  const socket = connect({
    host,
    port: Number(server.port || 443),
    ...(isIP(host) ? {} : { servername: host }),
    rejectUnauthorized: false, // trust is decided by the pin below, not by a public root
    timeout: timeoutMs,
  });
  const chain = await new Promise<X509Certificate[]>((resolve, reject) => {
    socket.once('secureConnect', () => {
      const certs: X509Certificate[] = [];
      let peer: PeerCertificate | undefined = socket.getPeerCertificate(true);
      const seen = new Set<string>();
      while (peer?.raw && !seen.has(peer.fingerprint256)) {
        seen.add(peer.fingerprint256);
        certs.push(new X509Certificate(peer.raw));
        peer = (peer as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
      }
      resolve(certs);
    });
    socket.once('timeout', () =>
      reject(new Error(`no TLS answer from ${server.host} within ${timeoutMs} ms`)),
    );
    socket.once('error', reject);
  }).finally(() => socket.destroy());

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
