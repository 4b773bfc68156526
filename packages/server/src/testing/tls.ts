import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import type { TestServer } from './harness.js';

/** The certificate a new TLS connection to the agent plane is shown. */
export async function presentedCertificate(t: TestServer): Promise<X509Certificate> {
  const url = new URL(t.server.agentUrl);
  return new Promise((resolve, reject) => {
    // Only reading what is presented: its time may be in the test clock's future.
    const socket = connect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error('no certificate presented'));
    });
    socket.on('error', reject);
  });
}

/** True when the CA certificate issued and signed the certificate (either as PEM or parsed). */
export function issuedBy(cert: X509Certificate | string, caPem: string): boolean {
  const leaf = typeof cert === 'string' ? new X509Certificate(cert) : cert;
  const ca = new X509Certificate(caPem);
  return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
}
