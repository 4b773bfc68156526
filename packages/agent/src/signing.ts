import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { caPinOf } from '@muster/host';
import { signRequest } from '@muster/proto';
import type { AgentConfig } from './config.js';

/** The parts of an identity a signature needs. */
export interface SigningIdentity {
  keyPem: string;
  certPem: string;
}

const keys = new Map<string, KeyObject>();
const serials = new Map<string, string>();

function keyOf(pem: string): KeyObject {
  let key = keys.get(pem);
  if (!key) {
    if (keys.size > 1000) keys.clear();
    key = createPrivateKey(pem);
    keys.set(pem, key);
  }
  return key;
}

/** The keyid of a signature: the serial of the certificate, lower-case hex as the server stores it. */
export function serialOf(certPem: string): string {
  let serial = serials.get(certPem);
  if (!serial) {
    if (serials.size > 1000) serials.clear();
    serial = new X509Certificate(certPem).serialNumber.toLowerCase();
    serials.set(certPem, serial);
  }
  return serial;
}

/**
 * The RFC 9421 headers that sign one request with the node key (CONTRACT section 12), for a
 * body that requestJson sends as JSON.stringify(body); none when the agent does not sign.
 */
export function signedHeaders(
  config: Pick<AgentConfig, 'signedRequests'>,
  identity: SigningIdentity,
  method: string,
  url: URL,
  body?: unknown,
): Record<string, string> {
  if (!config.signedRequests) return {};
  const bytes = body === undefined ? '' : JSON.stringify(body);
  return signRequest(
    { method, authority: url.host, target: `${url.pathname}${url.search}` },
    bytes,
    keyOf(identity.keyPem),
    serialOf(identity.certPem),
  );
}

/**
 * The TLS a connection to the control plane runs: mTLS with the node identity and the fleet
 * CA; with signed requests, TLS to the proxy, trusted through --proxy-ca or the system store.
 */
export function transportTls(
  config: Pick<AgentConfig, 'signedRequests' | 'proxyCa'>,
  identity: SigningIdentity & { caPem: string },
): { key?: string; cert?: string; ca?: string } {
  if (!config.signedRequests) return { key: identity.keyPem, cert: identity.certPem, ca: identity.caPem };
  return config.proxyCa ? { ca: config.proxyCa } : {};
}

/**
 * The --ca-pin check when a proxy terminates TLS (its certificate says nothing about the fleet):
 * in-band, on the enrollment answer. A certificate of the CA bundle must have a public key that
 * hashes to a pin, be a CA, and have issued and signed the node's new certificate; the answer's
 * own `trust.caPin` must name it. Returns that pin; throws Error with what failed.
 */
export function pinInBand(
  enrolled: { certificate: string; caBundle: string; trust: { caPin: string } },
  pins: readonly string[],
): string {
  const cert = new X509Certificate(enrolled.certificate);
  const cas = (
    enrolled.caBundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
  ).map((pem) => new X509Certificate(pem));
  const pinned = cas.find((ca) => pins.includes(caPinOf(ca.toString())));
  if (!pinned)
    throw new Error(`no CA in the enrollment answer has the public key ${pins.join(' or ')} (--ca-pin)`);
  if (!pinned.ca) throw new Error('the certificate with the pinned key is not a CA');
  if (!cert.checkIssued(pinned) || !cert.verify(pinned.publicKey))
    throw new Error('the issued certificate was not signed by the pinned CA');
  const pin = caPinOf(pinned.toString());
  if (enrolled.trust.caPin !== pin) throw new Error('the answer names a different CA than the pinned one');
  return pin;
}
