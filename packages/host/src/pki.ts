import { createHash, X509Certificate as NodeX509, webcrypto } from 'node:crypto';
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export { x509 };

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type CryptoKey = webcrypto.CryptoKey;
export type KeyPair = webcrypto.CryptoKeyPair;

/** ECDSA P-256 with SHA-256: the TLS identities of the CA, the server and every agent. */
export const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

export async function generateKeyPair(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as KeyPair;
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Loads a PKCS#8 P-256 key pair (the public half is derived from the private key). */
export async function importKeyPairPem(pem: string): Promise<KeyPair> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('no PEM block found');
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, EC_ALGORITHM, true, ['sign']);
  const jwk = await webcrypto.subtle.exportKey('jwk', privateKey);
  const { d: _d, ...publicJwk } = jwk;
  const publicKey = await webcrypto.subtle.importKey(
    'jwk',
    { ...publicJwk, key_ops: ['verify'] },
    EC_ALGORITHM,
    true,
    ['verify'],
  );
  return { privateKey, publicKey };
}

/** A PKCS#10 request carrying the public key; the server decides everything else. */
export async function createCsrPem(keys: KeyPair, name: string): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
  });
  return csr.toString('pem');
}

/** `sha256:<hex>` of a certificate's SubjectPublicKeyInfo, as the join line's `--ca-pin` carries it. */
export function caPinOf(certPem: string): string {
  const spki = new NodeX509(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

export const CA_PIN_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** Splits a PEM bundle into its certificates. */
export function splitPemBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
