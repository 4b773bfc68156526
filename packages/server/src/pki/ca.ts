import {
  type CryptoKey,
  caPinOf,
  generateKeyPair,
  type KeyPair,
  SIGNING_ALGORITHM,
  x509,
} from '@muster/host';

const BACKDATE_MS = 5 * 60_000;

/** What a node certificate is made of: policy decides all of it, the CSR only lends its key. */
export interface NodeCertificateRequest {
  publicKey: x509.PublicKey;
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
  readonly pem: string;
  readonly pin: string;
  private readonly name: x509.Name;
  private readonly authorityKeyId: x509.AuthorityKeyIdentifierExtension;

  private constructor(
    readonly certificate: x509.X509Certificate,
    private readonly keys: KeyPair,
    readonly trustDomain: string,
  ) {
    this.pem = certificate.toString('pem');
    this.pin = caPinOf(this.pem);
    this.name = new x509.Name(certificate.subject);
    const ski = certificate.getExtension(x509.SubjectKeyIdentifierExtension);
    if (!ski) throw new Error('the fleet CA certificate has no subject key identifier');
    this.authorityKeyId = new x509.AuthorityKeyIdentifierExtension(ski.keyId);
  }

  static async load(certPem: string, keys: KeyPair, trustDomain: string): Promise<CertificateAuthority> {
    return new CertificateAuthority(new x509.X509Certificate(certPem), keys, trustDomain);
  }

  /** Makes a new self-signed root. */
  static async create(opts: { now: number; lifetimeMs: number; trustDomain: string; serial: string }) {
    const keys = await generateKeyPair();
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: opts.serial,
      name: `CN=Muster fleet CA ${opts.trustDomain},O=Muster`,
      notBefore: new Date(opts.now - BACKDATE_MS),
      notAfter: new Date(opts.now + opts.lifetimeMs),
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return { ca: new CertificateAuthority(certificate, keys, opts.trustDomain), keys };
  }

  get notAfter(): number {
    return this.certificate.notAfter.getTime();
  }

  /** The SPIFFE ID a node's certificate carries. */
  spiffeId(nodeId: string): string {
    return `spiffe://${this.trustDomain}/node/${nodeId}`;
  }

  /**
   * Issues a node's client certificate. CN, SAN, key usage and lifetime come from policy;
   * whatever else the CSR asked for is ignored.
   */
  async issueNodeCertificate(req: NodeCertificateRequest): Promise<IssuedCertificate> {
    const notBefore = req.now - BACKDATE_MS;
    const notAfter = req.now + req.lifetimeMs;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: req.serial,
      subject: new x509.Name([{ CN: [req.name] }]),
      issuer: this.name,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey: req.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: this.spiffeId(req.nodeId) }], false),
        this.authorityKeyId,
      ],
    });
    return { pem: cert.toString('pem'), serial: req.serial, notBefore, notAfter };
  }

  /** Issues the server's own TLS identity for the names and addresses agents dial. */
  async issueServerCertificate(opts: {
    publicKey: CryptoKey;
    sans: readonly string[];
    serial: string;
    now: number;
    lifetimeMs: number;
  }): Promise<IssuedCertificate> {
    const notBefore = opts.now - BACKDATE_MS;
    const notAfter = opts.now + opts.lifetimeMs;
    const names = opts.sans.map((san) =>
      isIpAddress(san) ? { type: 'ip' as const, value: san } : { type: 'dns' as const, value: san },
    );
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: opts.serial,
      subject: new x509.Name([{ CN: [opts.sans[0] ?? 'muster'] }]),
      issuer: this.name,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey: opts.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(names, false),
        this.authorityKeyId,
      ],
    });
    return { pem: cert.toString('pem'), serial: opts.serial, notBefore, notAfter };
  }
}

export function isIpAddress(value: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(value) || value.includes(':');
}
