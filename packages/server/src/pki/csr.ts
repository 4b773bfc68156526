import { x509 } from '@muster/host';
import { BadRequestError } from '../errors.js';

/**
 * Reads a PKCS#10 request and proves the requester holds the key: its own signature must verify.
 * Only the public key is used afterwards; names, extensions and attributes are ignored.
 */
export async function verifiedCsrKey(pem: string): Promise<x509.PublicKey> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE REQUEST-----')) throw new Error('not PEM');
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    throw new BadRequestError('csr is not a PEM-encoded PKCS#10 certificate request', 'bad_csr');
  }
  const algorithm = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
    throw new BadRequestError('csr key must be ECDSA P-256', 'bad_csr');
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw new BadRequestError('csr signature does not verify', 'bad_csr');
  return csr.publicKey;
}
