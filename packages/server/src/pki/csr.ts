import { CsrError, type VerifiedCsr, verifyCsr } from '@muster/host';
import { BadRequestError } from '../errors.js';

/**
 * Reads a PKCS#10 request and proves the requester holds the key: its own signature must
 * verify. Only the public key is used afterwards; names, extensions and attributes are ignored.
 */
export function verifiedCsrKey(pem: string): Uint8Array {
  return verifiedCsr(pem).spki;
}

/** The verified request itself, for renewal, which also refuses a request made for another name. */
export function verifiedCsr(pem: string): VerifiedCsr {
  try {
    return verifyCsr(pem);
  } catch (err) {
    if (err instanceof CsrError) throw new BadRequestError(err.message, 'bad_csr');
    throw err;
  }
}
