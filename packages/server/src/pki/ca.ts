import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import {
  caPinOf,
  type GeneralName,
  issueCertificate,
  keyIdentifierOf,
  nameDer,
  OIDS,
  subjectDerOf,
} from '@muster/host';

export const BACKDATE_MS = 5 * 60_000;

/** What a node certificate is made of: policy decides all of it, the CSR only lends its key. */
export interface NodeCertificateRequest {
  /** The requester's SubjectPublicKeyInfo, from a CSR whose signature verified. */
  spki: Uint8Array;
  name: string;
  nodeId: string;
  serial: string;
  now: number;
  lifetimeMs: number;
}

export interface IssuedCertificate {
  pem: string;
  serial: string;
  notBefore: number;
  notAfter: number;
}

/** The fleet CA: an ECDSA P-256 root that signs node and server identities. */
export class CertificateAuthority {
  readonly pin: string;
  readonly certificate: X509Certificate;
  private readonly subject: Uint8Array;
  private readonly keyId: Uint8Array;

  private constructor(
    readonly pem: string,
    private readonly key: KeyObject,
    readonly trustDomain: string,
  ) {
    this.certificate = new X509Certificate(pem);
    if (!this.certificate.ca) throw new Error('the fleet CA certificate is not a CA certificate');
    if (!this.certificate.checkPrivateKey(key))
      throw new Error('the fleet CA key does not match its certificate');
    this.pin = caPinOf(pem);
    this.subject = subjectDerOf(pem);
    this.keyId = keyIdentifierOf(pem);
  }

  static load(certPem: string, keyPem: string, trustDomain: string): CertificateAuthority {
    return new CertificateAuthority(certPem, createPrivateKey(keyPem), trustDomain);
  }

  /**
   * Makes a new self-signed root; returns it with its private key as PKCS#8 PEM. A root made
   * by a rotation carries a `generation` in its name, so operators (and chain building) can
   * tell it from the root it replaces.
   */
  static create(opts: {
    now: number;
    lifetimeMs: number;
    trustDomain: string;
    serial: string;
    generation?: string;
  }) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const suffix = opts.generation ? ` ${opts.generation}` : '';
    const name = nameDer([
      [OIDS.commonName, `Muster fleet CA ${opts.trustDomain}${suffix}`],
      [OIDS.organization, 'Muster'],
    ]);
    const pem = issueCertificate(
      {
        serialHex: opts.serial,
        issuer: name,
        subject: name,
        notBefore: opts.now - BACKDATE_MS,
        notAfter: opts.now + opts.lifetimeMs,
        spki: publicKey.export({ type: 'spki', format: 'der' }),
        ca: true,
      },
      privateKey,
    );
    return {
      ca: new CertificateAuthority(pem, privateKey, opts.trustDomain),
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    };
  }

  get notAfter(): number {
    return Date.parse(this.certificate.validTo);
  }

  /** The certificate's serial in lowercase hex, as the store and the ledger name it. */
  get serial(): string {
    return this.certificate.serialNumber.toLowerCase();
  }

  /** True when this root issued the certificate (names and key identifiers match). */
  issued(cert: X509Certificate): boolean {
    return cert.checkIssued(this.certificate);
  }

  /** The SPIFFE ID a node's certificate carries. */
  spiffeId(nodeId: string): string {
    return `spiffe://${this.trustDomain}/node/${nodeId}`;
  }

  /**
   * Issues a node's client certificate. CN, SAN, key usage and lifetime come from policy;
   * whatever else the CSR asked for is never read.
   */
  issueNodeCertificate(req: NodeCertificateRequest): IssuedCertificate {
    const notBefore = req.now - BACKDATE_MS;
    const notAfter = req.now + req.lifetimeMs;
    const pem = issueCertificate(
      {
        serialHex: req.serial,
        issuer: this.subject,
        subject: nameDer([[OIDS.commonName, req.name]]),
        notBefore,
        notAfter,
        spki: req.spki,
        ca: false,
        extKeyUsage: ['clientAuth'],
        subjectAltNames: [{ uri: this.spiffeId(req.nodeId) }],
        authorityKeyId: this.keyId,
      },
      this.key,
    );
    return { pem, serial: req.serial, notBefore, notAfter };
  }

  /** The SPIFFE ID of a user's personal certificate: a user is never a node. */
  userSpiffeId(user: string): string {
    return `spiffe://${this.trustDomain}/user/${user}`;
  }

  /** Issues a user's personal client certificate (`muster login`); policy decides all of it. */
  issueUserCertificate(req: {
    spki: Uint8Array;
    user: string;
    serial: string;
    now: number;
    lifetimeMs: number;
  }): IssuedCertificate {
    const notBefore = req.now - BACKDATE_MS;
    const notAfter = req.now + req.lifetimeMs;
    const pem = issueCertificate(
      {
        serialHex: req.serial,
        issuer: this.subject,
        subject: nameDer([[OIDS.commonName, req.user]]),
        notBefore,
        notAfter,
        spki: req.spki,
        ca: false,
        extKeyUsage: ['clientAuth'],
        subjectAltNames: [{ uri: this.userSpiffeId(req.user) }],
        authorityKeyId: this.keyId,
      },
      this.key,
    );
    return { pem, serial: req.serial, notBefore, notAfter };
  }

  /** Issues the server's own TLS identity for the names and addresses agents dial. */
  issueServerCertificate(opts: {
    keyPem: string;
    sans: readonly string[];
    serial: string;
    now: number;
    lifetimeMs: number;
  }): IssuedCertificate {
    const notBefore = opts.now - BACKDATE_MS;
    const notAfter = opts.now + opts.lifetimeMs;
    const names: GeneralName[] = opts.sans.map((san) => (isIP(san) ? { ip: san } : { dns: san }));
    const pem = issueCertificate(
      {
        serialHex: opts.serial,
        issuer: this.subject,
        subject: nameDer([[OIDS.commonName, opts.sans[0] ?? 'muster']]),
        notBefore,
        notAfter,
        spki: createPublicKey(opts.keyPem).export({ type: 'spki', format: 'der' }),
        ca: false,
        extKeyUsage: ['serverAuth'],
        subjectAltNames: names,
        authorityKeyId: this.keyId,
      },
      this.key,
    );
    return { pem, serial: opts.serial, notBefore, notAfter };
  }
}

export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}
