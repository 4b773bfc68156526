import { webcrypto } from 'node:crypto';
import { x509 } from './x509.js';

/**
 * Key pairs, CSRs and certificates made the way any other client would make them, with
 * @peculiar/x509 over WebCrypto: independent of how the server builds its own, so tests can
 * ask for what the server must refuse.
 */
export type TestKeys = webcrypto.CryptoKeyPair;

export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export async function testKeys(namedCurve: 'P-256' | 'P-384' = 'P-256'): Promise<TestKeys> {
  return (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve }, true, [
    'sign',
    'verify',
  ])) as TestKeys;
}

export async function privateKeyPem(keys: TestKeys): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
}

/** A PKCS#10 request; by default for a fresh P-256 key, asking for nothing but a CN. */
export async function testCsr(
  opts: { keys?: TestKeys; name?: string; extensions?: x509.Extension[]; hash?: 'SHA-256' | 'SHA-384' } = {},
): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: opts.name ?? 'CN=test',
    keys: opts.keys ?? (await testKeys()),
    signingAlgorithm: { name: 'ECDSA', hash: opts.hash ?? 'SHA-256' },
    ...(opts.extensions ? { extensions: opts.extensions } : {}),
  });
  return csr.toString('pem');
}
