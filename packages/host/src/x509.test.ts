import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import 'reflect-metadata';
import { generateKeyPairSync } from 'node:crypto';
import * as peculiar from '@peculiar/x509';
import {
  CsrError,
  createCsr,
  fromPem,
  issueCertificate,
  keyIdentifier,
  nameDer,
  OIDS,
  toPem,
  verifyCsr,
} from './x509.js';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const serial = () => {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b.toString('hex');
};

function makeCa() {
  const keys = p256();
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const name = nameDer([
    [OIDS.commonName, 'Muster fleet CA test'],
    [OIDS.organization, 'Muster'],
  ]);
  const now = Date.now();
  const pem = issueCertificate(
    {
      serialHex: serial(),
      issuer: name,
      subject: name,
      notBefore: now - 300_000,
      notAfter: now + 86_400_000,
      spki,
      ca: true,
    },
    keys.privateKey,
  );
  return { keys, pem, name, spki };
}

test('a self-signed CA and a leaf it issues verify with Node and with an independent X.509 parser', async () => {
  const ca = makeCa();
  const root = new X509Certificate(ca.pem);
  assert.equal(root.ca, true);
  assert.equal(root.verify(root.publicKey), true);
  assert.equal(root.subject, 'CN=Muster fleet CA test\nO=Muster');

  const leafKeys = p256();
  const now = Date.now();
  const nodeId = '0b8a51f6-2f5e-4f0a-9a57-7a9f0b3f5a11';
  const leafPem = issueCertificate(
    {
      serialHex: serial(),
      issuer: ca.name,
      subject: nameDer([[OIDS.commonName, 'web-1']]),
      notBefore: now - 300_000,
      notAfter: now + 3_600_000,
      spki: leafKeys.publicKey.export({ type: 'spki', format: 'der' }),
      ca: false,
      extKeyUsage: ['clientAuth'],
      subjectAltNames: [{ uri: `spiffe://muster.local/node/${nodeId}` }],
      authorityKeyId: keyIdentifier(ca.spki),
    },
    ca.keys.privateKey,
  );
  const leaf = new X509Certificate(leafPem);
  assert.equal(leaf.checkIssued(root), true);
  assert.equal(leaf.verify(root.publicKey), true);
  assert.equal(leaf.ca, false);
  assert.equal(leaf.subject, 'CN=web-1');
  assert.equal(leaf.subjectAltName, `URI:spiffe://muster.local/node/${nodeId}`);
  assert.deepEqual(leaf.keyUsage, [OIDS.clientAuth]);

  const parsed = new peculiar.X509Certificate(leafPem);
  assert.equal(
    parsed.getExtension(peculiar.KeyUsagesExtension)?.usages,
    peculiar.KeyUsageFlags.digitalSignature,
  );
  assert.equal(parsed.getExtension(peculiar.BasicConstraintsExtension)?.ca, false);
  assert.equal(
    Buffer.from(parsed.getExtension(peculiar.AuthorityKeyIdentifierExtension)!.keyId!, 'hex').toString('hex'),
    Buffer.from(keyIdentifier(ca.spki)).toString('hex'),
  );
  assert.equal(
    await parsed.verify({ publicKey: await new peculiar.X509Certificate(ca.pem).publicKey.export() }),
    true,
  );
});

test('server certificates carry DNS names and IPv4 and IPv6 addresses', () => {
  const ca = makeCa();
  const keys = p256();
  const pem = issueCertificate(
    {
      serialHex: serial(),
      issuer: ca.name,
      subject: nameDer([[OIDS.commonName, 'muster.example']]),
      notBefore: Date.now(),
      notAfter: Date.now() + 60_000,
      spki: keys.publicKey.export({ type: 'spki', format: 'der' }),
      ca: false,
      extKeyUsage: ['serverAuth'],
      subjectAltNames: [{ dns: 'muster.example' }, { ip: '127.0.0.1' }, { ip: '::1' }, { ip: 'fd00::1:2' }],
    },
    ca.keys.privateKey,
  );
  const cert = new X509Certificate(pem);
  assert.equal(cert.checkHost('muster.example'), 'muster.example');
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(cert.checkIP('::1'), '::1');
  assert.equal(cert.checkIP('fd00::1:2'), 'fd00::1:2');
  assert.equal(cert.checkHost('other.example'), undefined);
});

test('a CSR made here verifies here and in an independent parser', async () => {
  const keys = p256();
  const pem = createCsr(keys.privateKey, keys.publicKey, 'db-1');
  const verified = verifyCsr(pem);
  assert.deepEqual(verified.spki, keys.publicKey.export({ type: 'spki', format: 'der' }));
  assert.deepEqual(verified.commonNames, ['db-1']);
  const parsed = new peculiar.Pkcs10CertificateRequest(pem);
  assert.equal(parsed.subject, 'CN=db-1');
  assert.equal(await parsed.verify(), true);
});

test('CSRs with a broken signature, a wrong key type or garbage are refused', () => {
  const keys = p256();
  const der = fromPem(createCsr(keys.privateKey, keys.publicKey, 'x'), 'CERTIFICATE REQUEST')!;
  const flipped = Buffer.from(der);
  flipped[flipped.length - 5]! ^= 0x01;
  assert.throws(
    () => verifyCsr(toPem(flipped, 'CERTIFICATE REQUEST')),
    (e: Error) => e instanceof CsrError,
  );

  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  assert.throws(() => verifyCsr(createCsr(p384.privateKey, p384.publicKey, 'x')), /must be ECDSA P-256/);

  assert.throws(() => verifyCsr('hello'), /not a PEM-encoded PKCS#10/);
  assert.throws(() => verifyCsr(toPem(randomBytes(300), 'CERTIFICATE REQUEST')), /not a PEM-encoded PKCS#10/);
  assert.throws(
    () => verifyCsr(toPem(der.subarray(0, der.length - 10), 'CERTIFICATE REQUEST')),
    /not a PEM-encoded/,
  );
  assert.throws(
    () => verifyCsr(toPem(Buffer.concat([der, Buffer.of(0)]), 'CERTIFICATE REQUEST')),
    /not a PEM-encoded/,
  );
});

test('a CSR whose public key is not a point on P-256 is refused', () => {
  const keys = p256();
  const der = fromPem(createCsr(keys.privateKey, keys.publicKey, 'x'), 'CERTIFICATE REQUEST')!;
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const at = der.indexOf(spki);
  assert.ok(at > 0);
  const offCurve = Buffer.from(der);
  offCurve[at + spki.length - 1]! ^= 0x01; // the last byte of Y
  assert.throws(
    () => verifyCsr(toPem(offCurve, 'CERTIFICATE REQUEST')),
    (e: Error) => e instanceof CsrError,
  );
});
