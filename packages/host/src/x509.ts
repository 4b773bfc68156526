import { createHash, createPublicKey, type KeyObject, sign, verify, X509Certificate } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import {
  bitString,
  boolean,
  bytesOf,
  childrenOf,
  contentOf,
  DER_TAG,
  type DerNode,
  expectNode,
  explicit,
  implicitPrimitive,
  octetString,
  oid,
  readNode,
  readOid,
  sequence,
  set,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
  utf8String,
} from '@muster/proto';

/**
 * X.509 certificates and PKCS#10 requests built and checked with node:crypto alone: every
 * signature and verification is native, and the DER around them is assembled by hand, so
 * issuing a certificate costs tens of microseconds, not milliseconds.
 */

export const OIDS = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

const ECDSA_SHA256 = sequence(oid(OIDS.ecdsaWithSha256));

export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

/** The DER inside the first PEM block with this label, or undefined when there is none. */
export function fromPem(text: string, label: string): Buffer | undefined {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(text);
  return match ? Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64') : undefined;
}

/** A distinguished name as DER: one attribute per RDN, UTF8String values. */
export function nameDer(attributes: ReadonlyArray<readonly [string, string]>): Uint8Array {
  return sequence(...attributes.map(([type, value]) => set(sequence(oid(type), utf8String(value)))));
}

export type GeneralName = { dns: string } | { ip: string } | { uri: string };

function generalName(name: GeneralName): Uint8Array {
  if ('dns' in name) return implicitPrimitive(2, new TextEncoder().encode(name.dns));
  if ('uri' in name) return implicitPrimitive(6, new TextEncoder().encode(name.uri));
  return implicitPrimitive(7, ipBytes(name.ip));
}

function ipBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').filter(Boolean) : []);
  const left = parse(head);
  const right = parse(tail);
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = Number.parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  });
  return out;
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? sequence(oid(id), boolean(true), octetString(value))
    : sequence(oid(id), octetString(value));
}

/** RFC 5280's first method: SHA-1 over the subjectPublicKey bits of a SubjectPublicKeyInfo. */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const outer = readNode(spki);
  const [, key] = childrenOf(spki, outer);
  if (!key || key.tag !== DER_TAG.BIT_STRING) throw new Error('not a SubjectPublicKeyInfo');
  return createHash('sha1')
    .update(spki.subarray(key.contentStart + 1, key.end))
    .digest();
}

/** Everything a certificate says; policy fills it in, never the requester. */
export interface CertificateSpec {
  serialHex: string;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: number;
  notAfter: number;
  /** The subject's public key as SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  /** A CA certificate (keyCertSign, cRLSign) or a leaf (digitalSignature only). */
  ca: boolean;
  extKeyUsage?: ReadonlyArray<'clientAuth' | 'serverAuth'>;
  subjectAltNames?: readonly GeneralName[];
  /** The issuer's key identifier; omitted on a self-signed root. */
  authorityKeyId?: Uint8Array;
}

/** Builds and signs a certificate with an ECDSA P-256 key; returns PEM. */
export function issueCertificate(spec: CertificateSpec, signingKey: KeyObject): string {
  const extensions = [
    extension(OIDS.basicConstraints, true, spec.ca ? sequence(boolean(true), smallInteger(0)) : sequence()),
    // KeyUsage bits: digitalSignature is bit 0 (0x80); keyCertSign bit 5, cRLSign bit 6 (0x06).
    extension(
      OIDS.keyUsage,
      true,
      spec.ca ? bitString(Uint8Array.of(0x06), 1) : bitString(Uint8Array.of(0x80), 7),
    ),
    extension(OIDS.subjectKeyIdentifier, false, octetString(keyIdentifier(spec.spki))),
  ];
  if (spec.extKeyUsage?.length) {
    extensions.push(
      extension(OIDS.extKeyUsage, false, sequence(...spec.extKeyUsage.map((u) => oid(OIDS[u])))),
    );
  }
  if (spec.subjectAltNames?.length) {
    extensions.push(
      extension(OIDS.subjectAltName, false, sequence(...spec.subjectAltNames.map(generalName))),
    );
  }
  if (spec.authorityKeyId) {
    extensions.push(
      extension(OIDS.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, spec.authorityKeyId))),
    );
  }
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(Buffer.from(spec.serialHex, 'hex')),
    ECDSA_SHA256,
    spec.issuer,
    sequence(time(new Date(spec.notBefore)), time(new Date(spec.notAfter))),
    spec.subject,
    spec.spki,
    explicit(3, sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, { key: signingKey, dsaEncoding: 'der' });
  return toPem(sequence(tbs, ECDSA_SHA256, bitString(signature)), 'CERTIFICATE');
}

/** Makes a PKCS#10 request for `commonName`, signed by the key it carries. */
export function createCsr(privateKey: KeyObject, publicKey: KeyObject, commonName: string): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = sequence(
    smallInteger(0),
    nameDer([[OIDS.commonName, commonName]]),
    spki,
    tlv(0xa0, new Uint8Array()),
  );
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  return toPem(sequence(info, ECDSA_SHA256, bitString(signature)), 'CERTIFICATE REQUEST');
}

export class CsrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsrError';
  }
}

/** A request whose signature verified: the only thing taken from it is its public key. */
export interface VerifiedCsr {
  spki: Buffer;
  publicKey: KeyObject;
  /** The common names in the request's subject, for callers that must refuse a request for another name. */
  commonNames: string[];
}

/**
 * Reads a PKCS#10 request and proves the requester holds the key: its own ECDSA P-256 /
 * SHA-256 signature must verify. Only the key and the subject's common names are read; extensions
 * and attributes never are.
 */
export function verifyCsr(pemText: string): VerifiedCsr {
  const der = fromPem(pemText, 'CERTIFICATE REQUEST');
  if (!der) throw new CsrError('csr is not a PEM-encoded PKCS#10 certificate request');
  let info: Buffer;
  let spki: Buffer;
  let algorithm: string;
  let signature: Buffer;
  let commonNames: string[];
  try {
    const outer = expectNode(der, 0, DER_TAG.SEQUENCE, der.length, 'CertificationRequest');
    if (outer.end !== der.length) throw new Error('trailing bytes');
    const [infoNode, algNode, sigNode] = childrenOf(der, outer);
    if (
      !infoNode ||
      !algNode ||
      !sigNode ||
      infoNode.tag !== DER_TAG.SEQUENCE ||
      sigNode.tag !== DER_TAG.BIT_STRING
    ) {
      throw new Error('not a CertificationRequest');
    }
    const [, subjectNode, spkiNode] = childrenOf(der, infoNode);
    if (!spkiNode || spkiNode.tag !== DER_TAG.SEQUENCE) throw new Error('no SubjectPublicKeyInfo');
    if (!subjectNode || subjectNode.tag !== DER_TAG.SEQUENCE) throw new Error('no subject');
    commonNames = commonNamesOf(der, subjectNode);
    const [algOid] = childrenOf(der, algNode);
    if (!algOid) throw new Error('no signature algorithm');
    info = Buffer.from(bytesOf(der, infoNode));
    spki = Buffer.from(bytesOf(der, spkiNode));
    algorithm = readOid(der, algOid);
    const bits = contentOf(der, sigNode);
    if (bits[0] !== 0) throw new Error('signature has unused bits');
    signature = Buffer.from(bits.subarray(1));
  } catch {
    throw new CsrError('csr is not a PEM-encoded PKCS#10 certificate request');
  }
  const publicKey = p256PublicKey(spki);
  if (algorithm !== OIDS.ecdsaWithSha256) throw new CsrError('csr must be signed with ECDSA and SHA-256');
  let valid = false;
  try {
    valid = verify('sha256', info, { key: publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new CsrError('csr signature does not verify');
  return { spki, publicKey, commonNames };
}

/** The commonName values of a DER Name (a SEQUENCE of SETs of {type, value}). */
function commonNamesOf(der: Buffer, name: DerNode): string[] {
  const names: string[] = [];
  for (const rdn of childrenOf(der, name)) {
    for (const attribute of childrenOf(der, rdn)) {
      const [type, value] = childrenOf(der, attribute);
      if (type && value && readOid(der, type) === OIDS.commonName) {
        names.push(Buffer.from(contentOf(der, value)).toString('utf8'));
      }
    }
  }
  return names;
}

// SubjectPublicKeyInfo of an uncompressed P-256 point: this fixed 26-byte prefix, then 0x04‖X‖Y.
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/**
 * Reads a P-256 public key. The common uncompressed form is imported from its coordinates,
 * which OpenSSL 3 does in half the time of decoding the DER; anything else goes the long way.
 */
function p256PublicKey(spki: Buffer): KeyObject {
  let key: KeyObject;
  try {
    if (spki.length === 91 && spki.subarray(0, 26).equals(P256_SPKI_PREFIX) && spki[26] === 0x04) {
      key = createPublicKey({
        key: {
          kty: 'EC',
          crv: 'P-256',
          x: spki.subarray(27, 59).toString('base64url'),
          y: spki.subarray(59, 91).toString('base64url'),
        },
        format: 'jwk',
      });
    } else {
      key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    }
  } catch {
    throw new CsrError('csr carries a public key that cannot be read');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CsrError('csr key must be ECDSA P-256');
  }
  return key;
}

/** The subject Name of a certificate as DER, to become the issuer of what it signs. */
export function subjectDerOf(certPem: string): Uint8Array {
  const der = new X509Certificate(certPem).raw;
  const cert = readNode(der);
  const [tbs] = childrenOf(der, cert);
  const fields = childrenOf(der, tbs!);
  // version [0] is present in every v3 certificate: serial, signature, issuer, validity, subject
  const subject = fields[0]?.tag === 0xa0 ? fields[5] : fields[4];
  if (!subject) throw new Error('certificate has no subject');
  return Buffer.from(bytesOf(der, subject));
}

/** The key identifier a certificate's SubjectKeyIdentifier extension carries, computed from its key. */
export function keyIdentifierOf(certPem: string): Uint8Array {
  return keyIdentifier(new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' }));
}
