import { type KeyObject, X509Certificate } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  contentDigestMatches,
  HttpSignatureError,
  parseSignature,
  parseSignatureInput,
  SIGNATURE_ALG,
  SIGNED_COMPONENTS,
  type SignatureInput,
  signatureBase,
  signatureParam,
  verifyBase,
} from '@muster/proto';
import type { Logger } from 'pino';
import { UnauthorizedError } from '../errors.js';
import type { NodeIdentity } from '../features/nodes/service.js';
import type { SocketIdentityDeps } from './auth.js';
import type { TrustedProxies } from './trusted-proxies.js';

/** How far a signature's `created` may be from the server's clock, either way (CONTRACT section 12). */
export const SIGNATURE_SKEW_MS = 60_000;
/** Every refusal of a signed request reads the same: which check failed is for the server's log. */
export const SIGNATURE_REFUSED = 'the request signature was refused';

/** Why a signed request was refused; logged, never told to the client. */
class Refusal extends Error {}

/** Nonces seen in signed requests, in the store: a replay to any replica is refused. */
export interface NonceStore {
  /** Records `nonce` until `expiresAt`; false when it was seen before. */
  consume(nonce: string, serial: string, expiresAt: number): Promise<boolean>;
}

export interface SignedRequestDeps extends Omit<SocketIdentityDeps, 'connections'> {
  /** The PEM of a certificate a node holds now (current or pending), by serial; undefined if none. */
  certificateBySerial(serial: string): Promise<string | undefined>;
  nonces: NonceStore;
  proxies: TrustedProxies;
  logger: Logger;
}

/** What a signed request is read from: the proxy's plain-HTTP request as it arrived. */
export interface SignedRequestFacts {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  remoteAddress: string | undefined;
}

/**
 * Verifies RFC 9421 signatures of agent requests that reach the server through a trusted proxy:
 * the proxy's address, the covered components, the clock, the node's current certificate and
 * every identity check mTLS makes (section 4), the body against content-digest, and last the
 * nonce, so a refused request stores nothing. Throws UnauthorizedError with one message.
 */
export class SignedRequestVerifier {
  private readonly certs = new Map<string, X509Certificate>();
  /** Each certificate's public key, made once (X509Certificate.publicKey builds a new one per read). */
  private readonly keys = new WeakMap<X509Certificate, KeyObject>();

  constructor(private readonly deps: SignedRequestDeps) {}

  async verify(req: SignedRequestFacts, body: Uint8Array): Promise<NodeIdentity> {
    try {
      return await this.check(req, body);
    } catch (err) {
      if (
        !(err instanceof Refusal) &&
        !(err instanceof HttpSignatureError) &&
        !(err instanceof UnauthorizedError)
      )
        throw err;
      this.deps.logger.warn(
        {
          reason: err.message,
          peer: req.remoteAddress,
          // The agent's address as a trusted proxy forwarded it; from any other peer, the peer.
          source: this.deps.proxies.clientAddress(req.remoteAddress, req.headers),
          path: req.url.split('?')[0],
        },
        'refused a signed agent request',
      );
      throw new UnauthorizedError(SIGNATURE_REFUSED, 'signature_refused');
    }
  }

  /** The node a certificate names, checked against the store now (every channel message asks). */
  async identify(cert: X509Certificate): Promise<NodeIdentity> {
    const { clock, roots } = this.deps;
    const now = clock.now();
    if (Date.parse(cert.validTo) <= now || Date.parse(cert.validFrom) > now + SIGNATURE_SKEW_MS)
      throw new Refusal('the certificate is not valid now');
    if (!roots.trusts(cert)) throw new Refusal('the certificate does not chain to a trusted fleet CA');
    const serial = cert.serialNumber.toLowerCase();
    const identity = await this.deps.identityBySerial(serial);
    if (!identity) {
      const why = await this.deps.noteRefusedSerial(serial);
      throw new Refusal(
        why === 'superseded' ? 'the certificate was superseded' : 'the certificate is not current',
      );
    }
    if (identity.pending) await this.deps.promote(identity.id, serial);
    return roots.retiring(cert) ? { ...identity, onRetiringRoot: true } : identity;
  }

  /** The certificate a signed channel upgrade proved; the channel asks identify() with it on every message. */
  async certificateOf(req: SignedRequestFacts): Promise<X509Certificate> {
    const input = this.parse(req);
    return this.certificate(String(signatureParam(input, 'keyid')));
  }

  private async check(req: SignedRequestFacts, body: Uint8Array): Promise<NodeIdentity> {
    const { clock, proxies } = this.deps;
    if (!proxies.trusts(req.remoteAddress))
      throw new Refusal('the connection is not from a --trusted-proxy address');
    const input = this.parse(req);
    const created = Number(signatureParam(input, 'created')) * 1000;
    const now = clock.now();
    if (Math.abs(now - created) > SIGNATURE_SKEW_MS) throw new Refusal('created is more than 60 s off');
    const expires = signatureParam(input, 'expires');
    if (expires !== undefined && Number(expires) * 1000 <= now)
      throw new Refusal('the signature has expired');
    const keyid = String(signatureParam(input, 'keyid'));
    const cert = await this.certificate(keyid);
    const message = {
      method: req.method,
      authority: String(req.headers.host ?? ''),
      target: req.url,
      headers: req.headers,
    };
    const base = signatureBase(message, input);
    if (!verifyBase(base, parseSignature(req.headers.signature as string | undefined), this.publicKey(cert)))
      throw new Refusal('the signature does not verify with the certificate keyid names');
    if (!contentDigestMatches(req.headers['content-digest'] as string | undefined, body))
      throw new Refusal('the body does not match content-digest');
    const identity = await this.identify(cert);
    if (
      !(await this.deps.nonces.consume(
        String(signatureParam(input, 'nonce')),
        keyid,
        created + SIGNATURE_SKEW_MS,
      ))
    )
      throw new Refusal('the nonce was seen before (a replay)');
    return identity;
  }

  private parse(req: SignedRequestFacts): SignatureInput {
    const header = req.headers['signature-input'];
    const input = parseSignatureInput(typeof header === 'string' ? header : undefined);
    for (const component of SIGNED_COMPONENTS)
      if (!input.components.includes(component))
        throw new Refusal(`the signature does not cover ${component}`);
    const created = signatureParam(input, 'created');
    const nonce = signatureParam(input, 'nonce');
    const keyid = signatureParam(input, 'keyid');
    const alg = signatureParam(input, 'alg');
    if (typeof created !== 'number') throw new Refusal('created is missing');
    if (typeof nonce !== 'string' || !/^[A-Za-z0-9_+/=-]{16,128}$/.test(nonce))
      throw new Refusal('nonce is missing or malformed');
    if (typeof keyid !== 'string' || !/^[0-9a-f]{1,64}$/i.test(keyid))
      throw new Refusal('keyid is not a certificate serial');
    if (alg !== undefined && alg !== SIGNATURE_ALG) throw new Refusal(`alg is not ${SIGNATURE_ALG}`);
    return input;
  }

  private publicKey(cert: X509Certificate): KeyObject {
    let key = this.keys.get(cert);
    if (!key) {
      key = cert.publicKey;
      this.keys.set(cert, key);
    }
    return key;
  }

  /** The certificate `keyid` names, parsed once per serial (serials are never reused). */
  private async certificate(keyid: string): Promise<X509Certificate> {
    const serial = keyid.toLowerCase();
    const known = this.certs.get(serial);
    if (known) return known;
    const pem = await this.deps.certificateBySerial(serial);
    if (!pem) {
      const why = await this.deps.noteRefusedSerial(serial);
      throw new Refusal(
        why === 'superseded' ? 'keyid names a superseded certificate' : 'keyid names no current certificate',
      );
    }
    const cert = new X509Certificate(pem);
    if (cert.serialNumber.toLowerCase() !== serial) throw new Refusal('keyid does not match the certificate');
    if (this.certs.size > 10_000) this.certs.clear();
    this.certs.set(serial, cert);
    return cert;
  }
}
