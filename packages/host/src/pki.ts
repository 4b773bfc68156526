import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generate,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import { promisify } from 'node:util';
import { createCsr } from './x509.js';

/** An ECDSA P-256 key pair: the TLS identities of the CA, the server and every agent. */
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const generateAsync = promisify(generate);

/** A fresh P-256 key pair, made off the main thread. */
export async function generateKeyPair(): Promise<KeyPair> {
  return generateAsync('ec', { namedCurve: 'P-256' });
}

export function exportPrivateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Loads a PKCS#8 P-256 private key; the public half is derived from it. */
export function importKeyPairPem(pem: string): KeyPair {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('expected an ECDSA P-256 private key');
  }
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** A PKCS#10 request carrying the public key; the server decides everything else. */
export function createCsrPem(keys: KeyPair, name: string): string {
  return createCsr(keys.privateKey, keys.publicKey, name);
}

/** `sha256:<hex>` of a certificate's SubjectPublicKeyInfo, as the join line's `--ca-pin` carries it. */
export function caPinOf(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

export const CA_PIN_PATTERN = /^sha256:[0-9a-f]{64}$/;
